"""conclave_getTransactionProof on in-process nodes, verified offline (`gateway.receipts`,
`conclave receipt verify`): a dev node's receipts, a confidential transaction's (its
parties get one, no one else), and receipts across a real validator-set change decided by
two validators."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from gateway.caller import acting_as
from gateway.cli import main
from gateway.node import Node
from gateway.receipts import InvalidReceipt, verify_document
from gateway.rpc.proofs import verifiable_receipt
from governance.system_contract import GOVERNANCE_ADDRESS
from ledger.receipts import receipt_to_json
from tests.evm_runtime.chainkit import ACCOUNTS, address_of, sign
from tests.gateway.inprocess import ALICE, BOB, call, make_node, post, request
from tests.support.sign_in import enclave_token

from .cluster import CHAIN_ID, Cluster, eventually

UNKNOWN = "0x" + "5a" * 32


@pytest.fixture
def dev_chain() -> Iterator[Node]:
    node = make_node(dev_mode=True)
    yield node
    node.engine.dispose()


def genesis_validators(node: Node) -> list[str]:
    return list(call(node, "qbft_getValidatorsByBlockNumber", "0x0"))


def test_every_transaction_of_a_block_has_a_receipt_that_verifies(dev_chain: Node) -> None:
    sent = [
        call(
            dev_chain, "eth_sendTransaction", {"from": ALICE.address, "to": BOB.address, "value": hex(i + 1)}
        )
        for i in range(5)
    ]
    waiting = call(
        dev_chain, "eth_sendTransaction", {"from": BOB.address, "to": ALICE.address, "value": "0x1"}
    )
    dev_chain.ordering.seal()
    validators = genesis_validators(dev_chain)
    for index, tx_hash in enumerate(sent):
        document = call(dev_chain, "conclave_getTransactionProof", tx_hash)
        assert document["validators"] == validators and document["transactionIndex"] == hex(index)
        verified = verify_document(document, validators)
        assert verified.value == index + 1 and verified.sender == address_of(ALICE) and verified.status == 1
        with pytest.raises(InvalidReceipt, match="quorum"):
            verify_document(document, [BOB.address])
    assert call(dev_chain, "conclave_getTransactionProof", UNKNOWN) is None
    answer = post(dev_chain, request("conclave_getTransactionProof", ["0x12"]))
    assert answer["error"]["code"] == -32602
    del waiting


def test_the_command_line_verifies_a_receipt_file(
    dev_chain: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tx_hash = call(
        dev_chain, "eth_sendTransaction", {"from": ALICE.address, "to": BOB.address, "value": "0x7"}
    )
    dev_chain.ordering.seal()
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(call(dev_chain, "conclave_getTransactionProof", tx_hash)))
    validators = ",".join(genesis_validators(dev_chain))
    capsys.readouterr()
    assert main(["receipt", "verify", str(receipt), "--validators", validators]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"valid: transaction {tx_hash} is final in block 1") and ALICE.address in shown
    assert main(["receipt", "verify", str(receipt), "--validators", validators, "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["valid"] and verified["value"] == "0x7" and verified["to"] == BOB.address
    assert main(["receipt", "verify", str(receipt), "--validators", BOB.address, "--json"]) == 1
    refused = json.loads(capsys.readouterr().out)
    assert refused["valid"] is False and "quorum" in refused["reason"]
    document = json.loads(receipt.read_text())
    document["transaction"] = document["transaction"][:-2] + (
        "00" if document["transaction"][-2:] != "00" else "01"
    )
    receipt.write_text(json.dumps(document))
    assert main(["receipt", "verify", str(receipt), "--validators", validators]) == 1
    assert capsys.readouterr().out.startswith("invalid: the transaction does not hash")
    receipt.write_text("{not json")
    assert main(["receipt", "verify", str(receipt), "--validators", validators]) == 2
    assert main(["receipt", "verify", str(tmp_path / "absent.json"), "--validators", validators]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["receipt", "verify", str(receipt), "--validators", "0x1234"])
    assert usage.value.code == 2


# -- confidential transactions --------------------------------------------------------


def test_a_confidential_transactions_receipt_is_for_its_parties_only(dev_chain: Node) -> None:
    retailer, partner, outsider = ACCOUNTS[2], ACCOUNTS[3], ACCOUNTS[4]
    tokens = {
        account.address: enclave_token(dev_chain.enclave, account)
        for account in (retailer, partner, outsider)
    }
    secret = b"40 pallets of widgets at 12.50".ljust(32, b".")
    raw = sign(retailer, chainId=dev_chain.params.chain_id, gas=40_000, data=secret, maxFeePerGas=10**11)
    with acting_as(tokens[retailer.address]):
        private = call(
            dev_chain,
            "conclave_sendRawPrivateTransaction",
            "0x" + raw.hex(),
            {"privateFor": [partner.address]},
        )
    public = call(
        dev_chain, "eth_sendTransaction", {"from": ALICE.address, "to": BOB.address, "value": "0x1"}
    )
    dev_chain.ordering.seal()
    validators = genesis_validators(dev_chain)
    for party in (retailer, partner):
        with acting_as(tokens[party.address]):
            document = call(dev_chain, "conclave_getTransactionProof", private)
        verified = verify_document(document, validators)
        assert verified.sender == address_of(retailer) and verified.status == 1
        assert bytes.fromhex(document["transaction"][2:]) == raw
    for caller in (None, tokens[outsider.address]):
        with acting_as(caller):
            assert call(dev_chain, "conclave_getTransactionProof", private) is None
            document = call(dev_chain, "conclave_getTransactionProof", public)
        # The public transaction shares the block: its proof shows nothing of the other.
        assert document["blockNumber"] == "0x1" and verify_document(document, validators).value == 1
        text = json.dumps(document).lower()
        assert private[2:].lower() not in text and secret.hex() not in text and raw.hex() not in text


# -- validator-set changes ------------------------------------------------------------


def governance_call(
    account: LocalAccount, nonce: int, signature: str, types: list[str], values: list[object]
) -> bytes:
    data = function_signature_to_4byte_selector(signature) + abi_encode(types, values)
    return sign(
        account,
        nonce=nonce,
        chainId=CHAIN_ID,
        to=to_checksum_address(GOVERNANCE_ADDRESS),
        data=data,
        gas=1_000_000,
    )


def test_receipts_follow_governance_from_the_genesis_validators(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = Cluster(tmp_path, 2)
        first, second = await cluster.start_all()
        genesis = ["0x" + address.hex() for address in cluster.addresses]
        try:
            before = first.send_raw_transaction(sign(ACCOUNTS[1], nonce=0, chainId=CHAIN_ID, value=1))
            await eventually(lambda: first.store.transaction(before) is not None, what="a transfer")
            removal = abi_encode(["address"], [cluster.addresses[1]])
            member = ACCOUNTS[0]
            for nonce, (signature, types, values) in enumerate(
                [
                    ("propose((string,bytes)[])", ["(string,bytes)[]"], [[("remove_validator", removal)]]),
                    ("vote(uint256,bool)", ["uint256", "bool"], [1, True]),
                ]
            ):
                sent = first.send_raw_transaction(governance_call(member, nonce, signature, types, values))
                await eventually(lambda sent=sent: first.store.receipt(sent) is not None, what="governance")
                assert first.store.receipt(sent).status == 1  # type: ignore[union-attr]
            changed_at = first.head.number
            assert set(first.enclave.validators(changed_at)) == {cluster.addresses[0]}
            after = first.send_raw_transaction(sign(ACCOUNTS[1], nonce=1, chainId=CHAIN_ID, value=2))
            await eventually(lambda: first.store.transaction(after) is not None, what="a transfer after")

            late = verifiable_receipt(first, after)
            assert late is not None and late.validators == (cluster.addresses[0],)
            assert [change.header for change in late.changes] == [
                first.store.block_by_number(changed_at).header
            ]  # type: ignore[union-attr]
            document = json.loads(json.dumps(receipt_to_json(late)))
            assert verify_document(document, genesis).changes_followed == 1
            assert verify_document(document, genesis[:1]).changes_followed == 0
            with pytest.raises(InvalidReceipt):  # the removed validator alone was never a set
                verify_document(document, genesis[1:])
            document["validatorChanges"] = []
            with pytest.raises(InvalidReceipt, match="quorum"):
                verify_document(document, genesis)

            early = verifiable_receipt(first, before)
            assert early is not None and early.changes == () and len(early.validators) == 2
            assert verify_document(receipt_to_json(early), genesis).signers == set(cluster.addresses)
            with pytest.raises(InvalidReceipt, match="quorum"):  # the later set did not decide it
                verify_document(receipt_to_json(early), genesis[:1])
            del second
        finally:
            await cluster.stop_all()

    asyncio.run(asyncio.wait_for(scenario(), 120))
