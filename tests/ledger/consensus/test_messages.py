"""The consensus messages: canonical encoding, signatures, seals and commit certificates."""

from __future__ import annotations

import pytest
import rlp
from eth_hash.auto import keccak
from eth_keys import keys
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.identity import NodeIdentity
from evm_runtime.types import Address, Hash32
from ledger.consensus.messages import (
    Commit,
    CommitCertificate,
    MalformedMessage,
    Message,
    Prepare,
    Proposal,
    RoundChange,
    Signer,
    certificate_of,
    decode,
    decode_certificate,
    encode,
    encode_body,
    encode_certificate,
    make_seal,
    max_faulty,
    quorum,
    seal_hash,
    sign,
    signed_by_author,
    signing_hash,
    verify_certificate,
)
from ledger.signing import validator_digest

from .simulation import KeySigner

SIGNERS = sorted((KeySigner.numbered(i) for i in range(7)), key=lambda s: s.address)
VALIDATORS = tuple(signer.address for signer in SIGNERS)
BLOCK = Hash32(keccak(b"a block"))
OTHER = Hash32(keccak(b"another block"))


def prepares(count: int, height: int = 5, round_: int = 0, block_hash: Hash32 = BLOCK) -> tuple[Prepare, ...]:
    return tuple(sign(Prepare(Address(b""), height, round_, block_hash), SIGNERS[i]) for i in range(count))


def commit(signer: Signer, height: int = 5, round_: int = 2, block_hash: Hash32 = BLOCK) -> Commit:
    seal = make_seal(signer, block_hash, round_)
    return sign(Commit(Address(b""), height, round_, block_hash, seal), signer)


def examples() -> list[Message]:
    """One of each message, with and without what may be attached."""
    me = SIGNERS[0]
    prepared = sign(
        RoundChange(me.address, 5, 3, 1, BLOCK, prepared_block=b"block", prepares=prepares(5, 5, 1)), me
    )
    return [
        sign(Proposal(me.address, 5, 0, BLOCK, b"block"), me),
        sign(Proposal(me.address, 5, 3, BLOCK, b"", round_changes=(prepared.without_attachments(),)), me),
        sign(
            Proposal(
                me.address,
                5,
                3,
                BLOCK,
                b"block",
                round_changes=(
                    prepared.without_attachments(),
                    sign(RoundChange(me.address, 5, 3), SIGNERS[1]),
                ),
                prepares=prepares(5, 5, 1),
            ),
            me,
        ),
        prepares(1)[0],
        commit(me),
        sign(RoundChange(me.address, 5, 3), me),
        prepared,
    ]


# -- quorum --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "q", "f"), [(1, 1, 0), (2, 2, 0), (3, 2, 0), (4, 3, 1), (5, 4, 1), (6, 4, 1), (7, 5, 2), (10, 7, 3)]
)
def test_quorum_is_two_thirds_rounded_up(n: int, q: int, f: int) -> None:
    assert (quorum(n), max_faulty(n)) == (q, f)


def test_any_two_quorums_share_an_honest_validator() -> None:
    for n in range(1, 200):
        assert 2 * quorum(n) - n >= max_faulty(n) + 1
        assert n - max_faulty(n) >= quorum(n)  # the honest ones alone are a quorum (liveness)


def test_an_empty_validator_set_has_no_quorum() -> None:
    with pytest.raises(ValueError):
        quorum(0)


# -- encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("message", examples(), ids=lambda m: type(m).__name__)
def test_messages_round_trip(message: Message) -> None:
    assert decode(encode(message)) == message


def test_the_signature_is_over_keccak_of_the_rlp_body() -> None:
    signer = SIGNERS[2]
    prepare = sign(Prepare(Address(b""), 9, 1, BLOCK), signer)
    body = rlp.encode([0x13, signer.address, 9, 1, BLOCK])
    assert encode_body(prepare) == body
    assert signing_hash(prepare) == keccak(body)
    assert len(prepare.signature) == 65
    recovered = keys.Signature(prepare.signature).recover_public_key_from_msg_hash(
        validator_digest(keccak(body))
    )
    assert recovered.to_canonical_address() == signer.address
    assert encode(prepare) == rlp.encode([rlp.decode(body), prepare.signature])


def test_attachments_are_not_signed() -> None:
    change = examples()[-1]
    assert isinstance(change, RoundChange)
    assert signing_hash(change) == signing_hash(change.without_attachments())
    assert signed_by_author(change.without_attachments())


def test_the_enclave_node_identity_is_a_signer() -> None:
    identity = NodeIdentity.create()
    signer: Signer = identity.validator_key
    prepare = sign(Prepare(Address(b""), 1, 0, BLOCK), signer)
    assert prepare.author == identity.address and signed_by_author(prepare)
    certificate = CommitCertificate(0, (make_seal(signer, BLOCK, 0),))
    assert verify_certificate(BLOCK, certificate, [identity.address])


def test_a_signature_of_another_key_is_not_the_authors() -> None:
    prepare = prepares(1)[0]
    assert signed_by_author(prepare)
    forged = Prepare(SIGNERS[1].address, prepare.height, prepare.round, prepare.block_hash, prepare.signature)
    assert not signed_by_author(forged)


def _mangled() -> list[bytes]:
    prepare = prepares(1)[0]
    body = [b"\x13", prepare.author, b"\x05", b"", BLOCK]
    change = sign(RoundChange(SIGNERS[0].address, 5, 3), SIGNERS[0])
    change_body = rlp.decode(encode_body(change))
    return [
        b"",
        b"\x00",
        encode(prepare) + b"\x00",  # trailing bytes
        rlp.encode([[b"\x13", prepare.author, b"\x00\x05", b"", BLOCK], prepare.signature]),  # leading zero
        rlp.encode([[b"\x13", prepare.author[:19], b"\x05", b"", BLOCK], prepare.signature]),  # short address
        rlp.encode([[b"\x13", prepare.author, b"\x05", b"", BLOCK[:31]], prepare.signature]),  # short hash
        rlp.encode([body, prepare.signature[:64]]),  # short signature
        rlp.encode([[b"\x19", *body[1:]], prepare.signature]),  # unknown code
        rlp.encode([body, prepare.signature, []]),  # a prepare with attachments
        rlp.encode([[*body, b"extra"], prepare.signature]),  # an extra field
        rlp.encode([[b"\x13", prepare.author, b"\x01" * 9, b"", BLOCK], prepare.signature]),  # over 8 bytes
        rlp.encode([change_body, change.signature, [b"block", []]]),  # attaches what it did not prepare
        rlp.encode([change_body, change.signature]),  # round change without its attachment slot
        b"\x81\x05",  # non-canonical RLP
    ]


@pytest.mark.parametrize("data", _mangled())
def test_anything_but_the_canonical_encoding_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_decode_to_anything_else(data: bytes) -> None:
    try:
        message = decode(data)
    except MalformedMessage:
        return
    assert encode(message) == data


@settings(max_examples=100, deadline=None)
@given(
    height=st.integers(0, 2**64 - 1),
    round_=st.integers(0, 2**64 - 1),
    block_hash=st.binary(min_size=32, max_size=32),
    block=st.binary(max_size=200),
    prepared_round=st.none() | st.integers(0, 2**64 - 1),
)
def test_every_field_survives_encoding(
    height: int, round_: int, block_hash: bytes, block: bytes, prepared_round: int | None
) -> None:
    signer = SIGNERS[3]
    prepared_hash = None if prepared_round is None else Hash32(block_hash)
    attachments = {} if prepared_round is None else {"prepared_block": block, "prepares": prepares(2)}
    for message in (
        Proposal(signer.address, height, round_, Hash32(block_hash), block),
        Prepare(signer.address, height, round_, Hash32(block_hash)),
        Commit(signer.address, height, round_, Hash32(block_hash), b"\x01" * 65),
        RoundChange(signer.address, height, round_, prepared_round, prepared_hash, **attachments),  # type: ignore[arg-type]
    ):
        signed = sign(message, signer)
        assert decode(encode(signed)) == signed


# -- seals and certificates ----------------------------------------------------------------


def certificate(count: int, round_: int = 2, block_hash: Hash32 = BLOCK) -> CommitCertificate:
    return certificate_of([commit(SIGNERS[i], round_=round_, block_hash=block_hash) for i in range(count)])


def test_a_seal_signs_the_block_hash_and_round() -> None:
    assert seal_hash(BLOCK, 2) == keccak(BLOCK + (2).to_bytes(8, "big"))
    seal = make_seal(SIGNERS[0], BLOCK, 2)
    public_key = keys.Signature(seal).recover_public_key_from_msg_hash(validator_digest(seal_hash(BLOCK, 2)))
    assert public_key.to_canonical_address() == SIGNERS[0].address


def test_a_quorum_of_seals_certifies_the_block() -> None:
    assert verify_certificate(BLOCK, certificate(5), VALIDATORS)
    assert verify_certificate(BLOCK, certificate(7), VALIDATORS)


@pytest.mark.parametrize(
    ("why", "block_hash", "cert"),
    [
        ("below quorum", BLOCK, certificate(4)),
        ("another block", OTHER, certificate(5)),
        ("another round", BLOCK, CommitCertificate(3, certificate(5).seals)),
        ("a seal twice", BLOCK, CommitCertificate(2, (*certificate(4).seals, certificate(4).seals[0]))),
        (
            "a non-validator's seal",
            BLOCK,
            CommitCertificate(2, (*certificate(4).seals, make_seal(KeySigner.numbered(99), BLOCK, 2))),
        ),
        ("a seal that is not one", BLOCK, CommitCertificate(2, (*certificate(5).seals[:4], b"\x00" * 65))),
    ],
)
def test_a_certificate_that_is_not_a_quorum_of_distinct_validators_fails(
    why: str, block_hash: Hash32, cert: CommitCertificate
) -> None:
    assert not verify_certificate(block_hash, cert, VALIDATORS), why


def test_one_validator_certifies_alone() -> None:
    assert verify_certificate(BLOCK, certificate(1), VALIDATORS[:1])
    assert not verify_certificate(BLOCK, certificate(1), ())


def test_certificates_round_trip_canonically() -> None:
    cert = certificate(5)
    assert decode_certificate(encode_certificate(cert)) == cert
    with pytest.raises(MalformedMessage):
        decode_certificate(encode_certificate(cert) + b"\x00")
    with pytest.raises(MalformedMessage):
        decode_certificate(rlp.encode([b"\x00\x02", list(cert.seals)]))


def test_a_certificate_is_made_of_one_round_and_block() -> None:
    with pytest.raises(ValueError):
        certificate_of([commit(SIGNERS[0], round_=1), commit(SIGNERS[1], round_=2)])
    with pytest.raises(ValueError):
        certificate_of([commit(SIGNERS[0]), commit(SIGNERS[1], block_hash=OTHER)])
