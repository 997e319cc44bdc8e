"""Receipts anyone can verify (`ledger.receipts`), on blocks made here: real signed
transactions and receipt encodings, Prague headers over their roots, certificates of
validator keys, and governance states proven from a header's state root.

A receipt verifies against the validators of its block, or an earlier set from which its
validator-set changes lead there, across a recovered network's reopening too (the members'
approvals, made with real keys, link it to the trusted chain); any changed byte of its
transaction, receipt, proofs, header or seals, a certificate of too few or of other
validators, a tampered change or reopening evidence, or a reopening too few members
approved makes it fail, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import pytest
import rlp
from eth.rlp.accounts import Account as StateAccount
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from enclave.attestation import make_quote
from enclave.platform import AttestationRoot
from evm_runtime.receipt_proofs import ordered_trie, prove_key
from evm_runtime.system_contracts import BLOB_SLOT
from evm_runtime.types import Address, Hash32
from gateway.receipts import GOVERNANCE, verified_to_json, verify_document
from governance.codec import encode_state
from governance.reopening import ApprovedReopening, NewValidator, Reopening, sign_approval
from governance.state import GovernanceState, Member, NetworkConfig, Validator
from governance.system_contract import CODE_MARKER, GOVERNANCE_ADDRESS
from ledger.consensus.messages import CommitCertificate, make_seal
from ledger.receipts import (
    FORMAT,
    GovernanceProof,
    InvalidReceipt,
    ReopeningEvidence,
    TransactionProof,
    ValidatorChange,
    VerifiableReceipt,
    receipt_from_json,
    receipt_to_json,
    verify_receipt,
)
from tests.evm_runtime.chainkit import ACCOUNTS, address_of, recipient, sign
from tests.ledger.consensus.simulation import KeySigner

KEYS = [KeySigner.numbered(i) for i in range(8)]
FOUR = KEYS[:4]
"""The validators of the test blocks (quorum 3)."""


def set_of(signers: Sequence[KeySigner]) -> frozenset[Address]:
    return frozenset(signer.address for signer in signers)


def receipt_encoding(index: int, status: int = 1, logs: int = 0) -> bytes:
    entries = [[recipient(index)[2:].encode()[:20], [keccak(b"topic%d" % j)], b"data"] for j in range(logs)]
    return b"\x02" + rlp.encode([status, 21_000 * (index + 1), b"\x00" * 256, entries])


def transactions(count: int) -> list[bytes]:
    return [sign(ACCOUNTS[i % 3], nonce=i // 3, value=i + 1, to=recipient(i)) for i in range(count)]


def header(
    number: int,
    txs: Sequence[bytes],
    receipts: Sequence[bytes],
    state_root: bytes | None = None,
    **more: bytes,
) -> bytes:
    fields = {"state_root": state_root, **more} if state_root is not None else {}
    made = PragueBlockHeader(
        difficulty=0,
        block_number=number,
        gas_limit=30_000_000,
        timestamp=1_000 + number,
        transaction_root=ordered_trie(txs).root_hash,
        receipt_root=ordered_trie(receipts).root_hash,
        base_fee_per_gas=7,
        **fields,
    )
    return bytes(rlp.encode(made))


def certify(encoded_header: bytes, signers: Sequence[KeySigner], round_: int = 0) -> CommitCertificate:
    block_hash = Hash32(keccak(encoded_header))
    return CommitCertificate(round_, tuple(make_seal(signer, block_hash, round_) for signer in signers))


def make_receipt(
    txs: Sequence[bytes],
    index: int,
    signers: Sequence[KeySigner] = FOUR[:3],
    number: int = 9,
    receipts: Sequence[bytes] | None = None,
) -> VerifiableReceipt:
    receipts = receipts or [receipt_encoding(i, logs=i % 3) for i in range(len(txs))]
    encoded = header(number, txs, receipts)
    key = rlp.encode(index)
    proof = TransactionProof(
        transaction_hash=Hash32(keccak(txs[index])),
        transaction=txs[index],
        receipt=receipts[index],
        index=index,
        transaction_proof=prove_key(ordered_trie(txs), key),
        receipt_proof=prove_key(ordered_trie(receipts), key),
        block_number=number,
        block_hash=Hash32(keccak(encoded)),
        header=encoded,
    )
    return VerifiableReceipt(proof, certify(encoded, signers), tuple(sorted(s.address for s in signers)))


def flipped(value: bytes, position: int, mask: int = 0x01) -> bytes:
    return value[:position] + bytes([value[position] ^ mask]) + value[position + 1 :]


def with_proof(original: VerifiableReceipt, **changes: object) -> VerifiableReceipt:
    return replace(original, proof=replace(original.proof, **changes))


def fails(
    receipt: VerifiableReceipt, trusted: frozenset[Address] = set_of(FOUR), match: str | None = None
) -> str:
    with pytest.raises(InvalidReceipt, match=match) as refused:
        verify_receipt(receipt, trusted, GOVERNANCE)
    return str(refused.value)


# -- good receipts ---------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(count=st.integers(1, 40), data=st.data())
def test_the_receipt_of_every_transaction_verifies(count: int, data: st.DataObject) -> None:
    txs = transactions(count)
    index = data.draw(st.integers(0, count - 1), label="index")
    quorum = data.draw(st.permutations(FOUR), label="signers")[: data.draw(st.integers(3, 4))]
    verified = verify_receipt(make_receipt(txs, index, quorum), set_of(FOUR), GOVERNANCE)
    assert verified.transaction_hash == keccak(txs[index])
    assert verified.index == index and verified.block_number == 9 and verified.timestamp == 1_009
    assert verified.sender == address_of(ACCOUNTS[index % 3])
    assert verified.to == bytes.fromhex(recipient(index)[2:]) and verified.value == index + 1
    assert verified.nonce == index // 3 and verified.chain_id == 1337 and verified.transaction_type == 2
    assert verified.status == 1 and len(verified.logs) == index % 3
    assert verified.signers == set_of(quorum) and verified.validators == set_of(FOUR)
    assert verified.changes_followed == 0


def test_the_json_form_round_trips_and_verifies_offline() -> None:
    receipt = make_receipt(transactions(5), 3)
    document = json.loads(json.dumps(receipt_to_json(receipt)))
    assert document["format"] == FORMAT
    assert receipt_from_json(document) == receipt
    shown = verified_to_json(verify_document(document, ["0x" + s.address.hex() for s in FOUR]))
    assert shown["valid"] and shown["transactionIndex"] == "0x3" and shown["status"] == "0x1"
    assert shown["from"] == ACCOUNTS[0].address and len(shown["signers"]) == 3


def test_a_contract_creation_shows_the_contract_it_made() -> None:
    txs = [sign(ACCOUNTS[4], nonce=7, to=None, data=b"\x60\x00", gas=60_000)]
    verified = verify_receipt(make_receipt(txs, 0), set_of(FOUR), GOVERNANCE)
    assert verified.to is None
    assert verified.contract_address == keccak(rlp.encode([address_of(ACCOUNTS[4]), 7]))[12:]


def test_a_failed_transaction_verifies_with_its_status() -> None:
    txs = transactions(2)
    receipts = [receipt_encoding(0), receipt_encoding(1, status=0)]
    assert verify_receipt(make_receipt(txs, 1, receipts=receipts), set_of(FOUR), GOVERNANCE).status == 0


# -- any changed byte fails ------------------------------------------------------------


def test_any_changed_byte_of_the_transaction_receipt_header_or_seals_fails() -> None:
    receipt = make_receipt(transactions(6), 4)
    proof = receipt.proof
    for field in ("transaction", "receipt", "header", "transaction_hash", "block_hash"):
        value = getattr(proof, field)
        for position in range(len(value)):
            fails(with_proof(receipt, **{field: flipped(value, position)}))
    for field in ("transaction_proof", "receipt_proof"):
        nodes = getattr(proof, field)
        for node in range(len(nodes)):
            for position in range(len(nodes[node])):
                tampered = (*nodes[:node], flipped(nodes[node], position), *nodes[node + 1 :])
                fails(with_proof(receipt, **{field: tampered}), match="not proven")
    certificate = receipt.certificate
    assert certificate is not None
    for seal in range(len(certificate.seals)):
        for position in range(65):
            seals = list(certificate.seals)
            seals[seal] = flipped(seals[seal], position)
            fails(
                replace(receipt, certificate=CommitCertificate(certificate.round, tuple(seals))),
                match="quorum",
            )
    fails(replace(receipt, certificate=CommitCertificate(1, certificate.seals)), match="quorum")


@settings(max_examples=80, deadline=None)
@given(count=st.integers(1, 30), data=st.data())
def test_a_random_change_anywhere_fails(count: int, data: st.DataObject) -> None:
    receipt = make_receipt(transactions(count), data.draw(st.integers(0, count - 1), label="index"))
    proof = receipt.proof
    assert receipt.certificate is not None
    part = data.draw(
        st.sampled_from(["transaction", "receipt", "header", "transaction_proof", "receipt_proof", "seal"]),
        label="part",
    )
    mask = data.draw(st.integers(1, 255), label="mask")
    if part == "seal":
        seals = list(receipt.certificate.seals)
        which = data.draw(st.integers(0, len(seals) - 1))
        seals[which] = flipped(seals[which], data.draw(st.integers(0, 64)), mask)
        tampered = replace(receipt, certificate=replace(receipt.certificate, seals=tuple(seals)))
    elif part.endswith("proof"):
        nodes = getattr(proof, part)
        node = data.draw(st.integers(0, len(nodes) - 1))
        position = data.draw(st.integers(0, len(nodes[node]) - 1))
        tampered = with_proof(
            receipt, **{part: (*nodes[:node], flipped(nodes[node], position, mask), *nodes[node + 1 :])}
        )
    else:
        value = getattr(proof, part)
        tampered = with_proof(
            receipt, **{part: flipped(value, data.draw(st.integers(0, len(value) - 1)), mask)}
        )
    fails(tampered)


def test_another_index_or_block_number_fails() -> None:
    receipt = make_receipt(transactions(6), 2)
    fails(with_proof(receipt, index=3), match="not proven")
    fails(with_proof(receipt, block_number=8), match="not 8")
    other = make_receipt(transactions(6), 3)
    fails(with_proof(receipt, receipt=other.proof.receipt, receipt_proof=other.proof.receipt_proof))
    fails(replace(receipt, certificate=None), match="no commit certificate")


# -- who certified ---------------------------------------------------------------------


def test_a_certificate_of_too_few_validators_fails() -> None:
    txs = transactions(3)
    fails(make_receipt(txs, 0, FOUR[:2]), match="quorum")  # 2 of 4; a quorum is 3
    fails(make_receipt(txs, 0, []), match="quorum")
    duplicated = make_receipt(txs, 0, [FOUR[0], FOUR[0], FOUR[1]])
    fails(duplicated, match="quorum")
    # Three seals are a quorum of four, not of seven.
    fails(make_receipt(txs, 0), set_of(KEYS[:7]), match="quorum")


def test_a_certificate_of_other_validators_fails() -> None:
    txs = transactions(3)
    fails(make_receipt(txs, 0, KEYS[4:7]), match="quorum")  # a quorum of the wrong four
    fails(make_receipt(txs, 0), set_of(KEYS[4:8]), match="quorum")  # the right seals, other trusted set
    fails(make_receipt(txs, 0, [*FOUR[:2], KEYS[5]]), match="quorum")  # one outsider among them
    fails(make_receipt(txs, 0), frozenset(), match="no trusted validators")


def test_the_validators_the_receipt_names_are_not_trusted() -> None:
    receipt = make_receipt(transactions(3), 0, KEYS[4:7])
    assert set(receipt.validators) == set_of(KEYS[4:7])
    fails(receipt, set_of(FOUR))
    assert verify_receipt(receipt, set_of(KEYS[4:7]), GOVERNANCE).signers == set_of(KEYS[4:7])


# -- validator-set changes -------------------------------------------------------------


def governance_block(
    number: int, validators: Sequence[KeySigner], members: int = 1, threshold: int = 0, **more: bytes
) -> tuple[bytes, GovernanceProof]:
    """A header whose state holds a governance state naming `validators` (and the first
    `members` test accounts as its members), and its proof; `more` header fields."""
    state = encode_state(
        GovernanceState(
            members={address_of(ACCOUNTS[i]): Member(f"member {i}") for i in range(members)},
            validators={s.address: Validator(f"v{i}:1", b"") for i, s in enumerate(validators)},
            config=NetworkConfig(recovery_threshold=threshold),
        )
    )
    storage = HexaryTrie({})
    storage[keccak(BLOB_SLOT.to_bytes(32, "big"))] = rlp.encode(int.from_bytes(keccak(state), "big"))
    accounts = HexaryTrie({})
    accounts[keccak(GOVERNANCE_ADDRESS)] = rlp.encode(
        StateAccount(0, 0, storage.root_hash, keccak(CODE_MARKER))
    )
    accounts[keccak(address_of(ACCOUNTS[0]))] = rlp.encode(
        StateAccount(3, 10**18, keccak(b"\x80"), keccak(b""))
    )
    encoded = header(number, [], [], state_root=accounts.root_hash, **more)
    proof = GovernanceProof(
        prove_key(accounts, keccak(GOVERNANCE_ADDRESS)),
        prove_key(storage, keccak(BLOB_SLOT.to_bytes(32, "big"))),
        state,
    )
    return encoded, proof


def change(number: int, before: Sequence[KeySigner], after: Sequence[KeySigner]) -> ValidatorChange:
    encoded, proof = governance_block(number, after)
    return ValidatorChange(encoded, certify(encoded, before[: len(before) * 2 // 3 + 1]), proof)


GENESIS_SET = FOUR  # A B C D
SECOND_SET = [KEYS[0], KEYS[1], KEYS[4]]  # A B E, from block 3
THIRD_SET = [KEYS[5], KEYS[6], KEYS[7], KEYS[4]]  # all new, from block 6


def changed_receipt() -> VerifiableReceipt:
    """A transaction of block 9, decided by the third set; the two changes before it."""
    receipt = make_receipt(transactions(4), 1, THIRD_SET[:3])
    return replace(receipt, changes=(change(2, GENESIS_SET, SECOND_SET), change(5, SECOND_SET, THIRD_SET)))


def test_changes_lead_from_any_earlier_trusted_set_to_the_blocks() -> None:
    receipt = changed_receipt()
    for trusted, followed in ((GENESIS_SET, 2), (SECOND_SET, 1), (THIRD_SET, 0)):
        verified = verify_receipt(receipt, set_of(trusted), GOVERNANCE)
        assert verified.validators == set_of(THIRD_SET) and verified.changes_followed == followed
    assert receipt_from_json(json.loads(json.dumps(receipt_to_json(receipt)))) == receipt
    fails(receipt, set_of(KEYS[1:4]))  # a set that never was: no change is certified by it
    fails(replace(receipt, changes=receipt.changes[:1]), set_of(GENESIS_SET), match="1 validator-set")
    fails(replace(receipt, changes=()), set_of(GENESIS_SET), match="quorum")


def test_a_tampered_change_fails() -> None:
    receipt = changed_receipt()
    first, second = receipt.changes
    proof = first.governance

    def with_first(tampered: ValidatorChange) -> VerifiableReceipt:
        return replace(receipt, changes=(tampered, second))

    for position in range(len(proof.state)):
        tampered = replace(first, governance=replace(proof, state=flipped(proof.state, position)))
        fails(with_first(tampered), set_of(GENESIS_SET), match="governance")
    for field in ("account_proof", "storage_proof"):
        nodes = getattr(proof, field)
        for node in range(len(nodes)):
            for position in range(0, len(nodes[node]), 5):
                changed = (*nodes[:node], flipped(nodes[node], position), *nodes[node + 1 :])
                fails(
                    with_first(replace(first, governance=replace(proof, **{field: changed}))),
                    set_of(GENESIS_SET),
                )
    for position in range(0, len(first.header), 7):  # another header: the certificate is not for it
        fails(with_first(replace(first, header=flipped(first.header, position))), set_of(GENESIS_SET))
    seals = list(first.certificate.seals)
    seals[0] = flipped(seals[0], 10)
    fails(
        with_first(replace(first, certificate=replace(first.certificate, seals=tuple(seals)))),
        set_of(GENESIS_SET),
    )
    # Another governance state, proven from another block the same set did not certify.
    forged_header, forged_proof = governance_block(2, KEYS[5:8])
    fails(with_first(replace(first, governance=forged_proof)), set_of(GENESIS_SET), match="governance")
    fails(with_first(ValidatorChange(forged_header, first.certificate, forged_proof)), set_of(GENESIS_SET))


def test_changes_are_in_chain_order_before_the_block() -> None:
    receipt = changed_receipt()
    first, second = receipt.changes
    fails(replace(receipt, changes=(second, first)), set_of(GENESIS_SET), match="chain order")
    late = change(9, GENESIS_SET, SECOND_SET)
    fails(replace(receipt, changes=(first, second, late)), set_of(GENESIS_SET), match="chain order")


# -- what is not a receipt -------------------------------------------------------------


def test_documents_that_are_not_receipts_are_refused_with_the_reason() -> None:
    good = receipt_to_json(changed_receipt())
    assert receipt_from_json(good)
    broken: list[object] = [None, [], "receipt", {}, {**good, "format": "conclave-receipt/0"}]
    for key in good:
        broken.append({k: v for k, v in good.items() if k != key})
        broken.append({**good, key: 7})
        broken.append({**good, key: "0xzz"})
        broken.append({**good, key: ["0x1"]})
    broken.append({**good, "blockHash": "0x" + "00" * 31})
    broken.append({**good, "validators": ["0x1234"]})
    broken.append({**good, "certificate": {"round": "0x0", "seals": ["0x" + "00" * 64]}})
    broken.append({**good, "validatorChanges": [{**good["validatorChanges"][0], "blockNumber": "0x3"}]})
    broken.append(
        {**good, "validatorChanges": [{**good["validatorChanges"][0], "blockHash": good["blockHash"]}]}
    )
    for document in broken:
        with pytest.raises(InvalidReceipt):
            receipt = receipt_from_json(document)
            verify_receipt(receipt, set_of(GENESIS_SET), GOVERNANCE)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.just("0x") | st.just("0x00"),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(receipt_to_json(make_receipt(transactions(2), 0)))), value=json_values)
def test_any_field_replaced_by_any_json_is_refused_or_verifies_as_a_receipt(key: str, value: object) -> None:
    document = {**receipt_to_json(make_receipt(transactions(2), 0)), key: value}
    try:
        verify_receipt(receipt_from_json(document), set_of(FOUR), GOVERNANCE)
    except InvalidReceipt:
        pass


# -- reopenings ------------------------------------------------------------------------

MEMBERS = 3
"""The consortium's members: the first three test accounts; a majority (2) reopens."""
LOST_SET = [KEYS[0], KEYS[1], KEYS[4]]  # the second set, lost in a disaster
REOPENED_SET = [KEYS[5], KEYS[6]]  # the recovered network's new validators
ROOT = AttestationRoot.create()
QUOTES = {
    signer.address: make_quote(
        ROOT.new_platform(), b"\x11" * 32, signer.key.public_key.to_compressed_bytes(), b"", 1_700_000_000
    ).encode()
    for signer in KEYS
}


def reopening_change(
    number: int,
    before: Sequence[KeySigner],
    installed: Sequence[KeySigner],
    approvers: Sequence[int] = (0, 2),
    *,
    parent_signers: Sequence[KeySigner] | None = None,
    certifiers: Sequence[KeySigner] | None = None,
    named_after: Sequence[KeySigner] | None = None,
    names: Sequence[KeySigner] | None = None,
    threshold: int = 0,
    parent_number: int | None = None,
) -> ValidatorChange:
    """Reopening block `number`: its parent is decided by `before` (certified by
    `parent_signers`, a quorum of them by default), the members `approvers` (indexes of test
    accounts) approved the record naming `names` (default `installed`); it is certified by
    `certifiers` (default `installed`) and governance after it names `named_after`."""
    parent_header, parent_governance = governance_block(number - 1, before, MEMBERS, threshold)
    parent_hash = Hash32(keccak(parent_header))
    named = names if names is not None else installed
    reopening = Reopening(
        1337,
        number - 1 if parent_number is None else parent_number,
        parent_hash,
        tuple(NewValidator(QUOTES[s.address], f"10.0.0.{i}:30303") for i, s in enumerate(named)),
    )
    approvals = tuple(sign_approval(reopening, bytes(ACCOUNTS[i].key)) for i in approvers)
    record = ApprovedReopening(reopening, approvals).encode()
    encoded, governance = governance_block(
        number,
        named_after if named_after is not None else installed,
        MEMBERS,
        parent_hash=parent_hash,
        extra_data=keccak(record),
    )
    signers = parent_signers if parent_signers is not None else before[: len(before) * 2 // 3 + 1]
    evidence = ReopeningEvidence(record, parent_header, certify(parent_header, signers), parent_governance)
    certifying = certifiers if certifiers is not None else installed
    return ValidatorChange(encoded, certify(encoded, certifying), governance, evidence)


def reopened_receipt(**reopening: object) -> VerifiableReceipt:
    """A transaction of block 9, decided by the reopened set: genesis's set changed at block
    2, the validators named then were lost, and the members reopened the network at block 5."""
    receipt = make_receipt(transactions(4), 1, REOPENED_SET)
    changes = (
        change(2, GENESIS_SET, LOST_SET),
        reopening_change(5, LOST_SET, REOPENED_SET, **reopening),  # type: ignore[arg-type]
    )
    return replace(receipt, changes=changes)


def test_a_reopening_leads_from_the_lost_validators_to_the_reopened_ones() -> None:
    receipt = reopened_receipt()
    for trusted, followed, reopenings in ((GENESIS_SET, 2, 1), (LOST_SET, 1, 1), (REOPENED_SET, 1, 0)):
        verified = verify_receipt(receipt, set_of(trusted), GOVERNANCE)
        assert verified.validators == set_of(REOPENED_SET) and verified.signers == set_of(REOPENED_SET)
        assert (verified.changes_followed, verified.reopenings_followed) == (followed, reopenings)
    document = json.loads(json.dumps(receipt_to_json(receipt)))
    assert document["validatorChanges"][0]["reopening"] is None
    assert set(document["validatorChanges"][1]["reopening"]) == {
        "record",
        "parentHeader",
        "parentCertificate",
        "parentAccountProof",
        "parentStorageProof",
        "parentGovernanceState",
    }
    assert receipt_from_json(document) == receipt
    shown = verified_to_json(verify_document(document, ["0x" + s.address.hex() for s in GENESIS_SET]))
    assert shown["validatorChangesFollowed"] == 2 and shown["reopeningsFollowed"] == 1
    # A receipt made before reopenings were carried has no "reopening" key: still a receipt.
    older = json.loads(json.dumps(receipt_to_json(changed_receipt())))
    for item in older["validatorChanges"]:
        del item["reopening"]
    assert receipt_from_json(older) == changed_receipt()
    # Without the evidence, the reopening is a change the lost validators did not certify.
    bare = replace(receipt, changes=(receipt.changes[0], replace(receipt.changes[1], reopening=None)))
    fails(bare, set_of(GENESIS_SET), match="quorum")
    assert verify_receipt(bare, set_of(REOPENED_SET), GOVERNANCE).changes_followed == 1


def test_a_reopening_right_after_a_change_is_linked_by_that_change() -> None:
    """The parent is itself a change block: its certificate is by the set before it, which
    the walk followed, not by the set it named."""
    first = change(4, GENESIS_SET, LOST_SET)  # its governance state has one member, ACCOUNTS[0]
    parent_hash = Hash32(keccak(first.header))
    named = tuple(NewValidator(QUOTES[s.address], "10.0.0.1:30303") for s in REOPENED_SET)
    reopening = Reopening(1337, 4, parent_hash, named)
    record = ApprovedReopening(reopening, (sign_approval(reopening, bytes(ACCOUNTS[0].key)),)).encode()
    encoded, governance = governance_block(
        5, REOPENED_SET, MEMBERS, parent_hash=parent_hash, extra_data=keccak(record)
    )
    evidence = ReopeningEvidence(record, first.header, first.certificate, first.governance)
    second = ValidatorChange(encoded, certify(encoded, REOPENED_SET), governance, evidence)
    receipt = replace(make_receipt(transactions(2), 0, REOPENED_SET), changes=(first, second))
    verified = verify_receipt(receipt, set_of(GENESIS_SET), GOVERNANCE)
    assert verified.validators == set_of(REOPENED_SET)
    assert (verified.changes_followed, verified.reopenings_followed) == (2, 1)
    # The lost set certified no block: a verifier who trusts only it cannot link the reopening.
    fails(receipt, set_of(LOST_SET), "passed over")


def test_any_changed_byte_of_the_reopening_evidence_fails() -> None:
    receipt = reopened_receipt()
    first, second = receipt.changes
    evidence = second.reopening
    assert evidence is not None

    def with_evidence(**changes: object) -> VerifiableReceipt:
        return replace(receipt, changes=(first, replace(second, reopening=replace(evidence, **changes))))

    for position in range(len(evidence.record)):
        fails(with_evidence(record=flipped(evidence.record, position)), set_of(GENESIS_SET), "extraData")
    for position in range(len(evidence.parent_header)):
        fails(with_evidence(parent_header=flipped(evidence.parent_header, position)), set_of(GENESIS_SET))
    proof = evidence.parent_governance
    for position in range(len(proof.state)):
        tampered = replace(proof, state=flipped(proof.state, position))
        fails(with_evidence(parent_governance=tampered), set_of(GENESIS_SET), "governance")
    for field in ("account_proof", "storage_proof"):
        nodes = getattr(proof, field)
        for node in range(len(nodes)):
            for position in range(0, len(nodes[node]), 3):
                changed = (*nodes[:node], flipped(nodes[node], position), *nodes[node + 1 :])
                fails(
                    with_evidence(parent_governance=replace(proof, **{field: changed})), set_of(GENESIS_SET)
                )
    for seal in range(len(evidence.parent_certificate.seals)):
        for position in range(0, 65, 4):
            seals = list(evidence.parent_certificate.seals)
            seals[seal] = flipped(seals[seal], position)
            tampered_certificate = replace(evidence.parent_certificate, seals=tuple(seals))
            refused = fails(with_evidence(parent_certificate=tampered_certificate), set_of(GENESIS_SET))
            assert "passed over" in refused
    # The reopening block itself: its header, its certificate, governance after it.
    for position in range(0, len(second.header), 5):
        tampered_change = replace(second, header=flipped(second.header, position))
        fails(replace(receipt, changes=(first, tampered_change)), set_of(GENESIS_SET))
    seals = list(second.certificate.seals)
    seals[1] = flipped(seals[1], 33)
    tampered_change = replace(second, certificate=replace(second.certificate, seals=tuple(seals)))
    fails(replace(receipt, changes=(first, tampered_change)), set_of(GENESIS_SET), "installs")
    state = second.governance.state
    for position in range(0, len(state), 3):
        tampered_change = replace(
            second, governance=replace(second.governance, state=flipped(state, position))
        )
        fails(replace(receipt, changes=(first, tampered_change)), set_of(GENESIS_SET), "governance")
    # The evidence is checked even by a verifier who trusts the reopened set.
    fails(with_evidence(record=flipped(evidence.record, 3)), set_of(REOPENED_SET), "extraData")


def test_a_reopening_too_few_members_approved_fails() -> None:
    fails(reopened_receipt(approvers=(1,)), set_of(GENESIS_SET), "1 of the 2 members' approvals")
    fails(reopened_receipt(approvers=()), set_of(GENESIS_SET), "0 of the 2")
    fails(reopened_receipt(approvers=(2, 2)), set_of(GENESIS_SET), "1 of the 2")  # one member twice
    fails(reopened_receipt(approvers=(0, 1), threshold=3), set_of(GENESIS_SET), "2 of the 3")
    assert verify_receipt(reopened_receipt(approvers=(0, 1, 2), threshold=3), set_of(LOST_SET), GOVERNANCE)
    fails(reopened_receipt(approvers=(0, 4)), set_of(GENESIS_SET), "not a member")  # an outsider signed


def test_a_reopening_whose_parent_the_trusted_set_did_not_certify_fails() -> None:
    outsiders = KEYS[5:8]
    refused = fails(reopened_receipt(parent_signers=outsiders), set_of(GENESIS_SET), "quorum")
    assert "reopening at block 5 was passed over" in refused
    fails(reopened_receipt(parent_signers=LOST_SET[:1]), set_of(LOST_SET), "passed over")  # 1 of 3
    # A set that never was cannot adopt a reopening either.
    fails(reopened_receipt(), set_of(KEYS[1:4]), "passed over")


def test_a_reopening_inconsistent_with_its_block_fails() -> None:
    trusted = set_of(GENESIS_SET)
    fails(reopened_receipt(certifiers=LOST_SET), trusted, "quorum of the validators it installs")
    fails(reopened_receipt(certifiers=REOPENED_SET[:1]), trusted, "installs")  # 1 of 2
    fails(reopened_receipt(named_after=[*REOPENED_SET, KEYS[7]]), trusted, "other validators")
    fails(reopened_receipt(parent_number=3), trusted, "another block")
    fails(reopened_receipt(names=[REOPENED_SET[0], REOPENED_SET[0]]), trusted, "twice")
    layout = replace(GOVERNANCE, reopening=None)
    with pytest.raises(InvalidReceipt, match="layout of reopenings"):
        verify_receipt(reopened_receipt(), trusted, layout)


def test_a_reopening_evidence_document_that_is_not_one_is_refused() -> None:
    good = receipt_to_json(reopened_receipt())
    evidence = good["validatorChanges"][1]["reopening"]
    broken: list[object] = [7, "0x", [], {}]
    for key in evidence:
        broken.append({k: v for k, v in evidence.items() if k != key})
        broken.append({**evidence, key: "0xzz"})
    for value in broken:
        changes = [good["validatorChanges"][0], {**good["validatorChanges"][1], "reopening": value}]
        with pytest.raises(InvalidReceipt):
            verify_receipt(
                receipt_from_json({**good, "validatorChanges": changes}), set_of(GENESIS_SET), GOVERNANCE
            )


def test_the_node_finds_reopenings_between_resolved_proposals_with_few_reads() -> None:
    """`gateway.rpc.proofs._changes_within`: a binary search per change, not a read per block."""
    from gateway.rpc.proofs import _changes_within

    sets = {0: set_of(GENESIS_SET), 1_000: set_of(LOST_SET), 70_000: set_of(REOPENED_SET)}
    reads: list[int] = []

    def named(number: int) -> frozenset[Address]:
        reads.append(number)
        return sets[max(start for start in sets if start <= number)]

    assert _changes_within(named, 0, 99_999) == [1_000, 70_000]
    assert len(reads) < 80
    reads.clear()
    assert _changes_within(named, 70_000, 99_999) == [] and len(reads) == 2
    assert _changes_within(named, 5, 5) == []
