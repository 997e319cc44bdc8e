"""The handshake without sockets: who is accepted, who is refused, and the keys agreed."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey

from evm_runtime.types import Address
from ledger.network import HandshakeRefused
from ledger.network.frames import FrameOpener, FrameSealer, Kind
from ledger.network.handshake import (
    BAD_SIGNATURE,
    CHALLENGE_LENGTH,
    KEY_EXCHANGE,
    MALFORMED,
    NOT_VALIDATOR,
    SELF,
    UNEXPECTED_PEER,
    WRONG_CHAIN,
    WRONG_VERSION,
    AcceptorHandshake,
    DialerHandshake,
    Role,
    auth_digest,
    recover_address,
)
from tests.ledger.network.support import CHAIN_ID, KeySigner, LyingSigner

DIALER = KeySigner.numbered(1)
ACCEPTOR = KeySigner.numbered(2)
OUTSIDER = KeySigner.numbered(3)
VALIDATORS = {DIALER.address, ACCEPTOR.address}


def acceptor(signer: KeySigner = ACCEPTOR, chain_id: int = CHAIN_ID) -> AcceptorHandshake:
    return AcceptorHandshake(signer, chain_id, VALIDATORS.__contains__)


def test_both_ends_agree_on_keys_that_seal_each_direction() -> None:
    dialer = DialerHandshake(DIALER, CHAIN_ID, ACCEPTOR.address)
    end = acceptor()
    auth, dialer_keys = dialer.on_reply(end.on_hello(dialer.hello()))
    who, acceptor_keys = end.on_auth(auth)

    assert who == DIALER.address
    assert dialer_keys == acceptor_keys
    assert dialer_keys.dialer_to_acceptor != dialer_keys.acceptor_to_dialer
    frame = FrameSealer(dialer_keys.dialer_to_acceptor).seal(Kind.DATA, b"hello")
    assert FrameOpener(acceptor_keys.dialer_to_acceptor).open(frame[4:]) == (Kind.DATA, b"hello")


def test_every_connection_gets_fresh_keys() -> None:
    keys = []
    for _ in range(2):
        dialer = DialerHandshake(DIALER, CHAIN_ID, ACCEPTOR.address)
        end = acceptor()
        auth, session = dialer.on_reply(end.on_hello(dialer.hello()))
        end.on_auth(auth)
        keys.append(session)
    assert keys[0] != keys[1]


@pytest.mark.parametrize(
    ("dialer_signer", "chain_id", "reason"),
    [
        pytest.param(OUTSIDER, CHAIN_ID, NOT_VALIDATOR, id="not-a-validator"),
        pytest.param(ACCEPTOR, CHAIN_ID, SELF, id="own-address"),
        pytest.param(DIALER, CHAIN_ID + 1, WRONG_CHAIN, id="other-chain"),
    ],
)
def test_the_acceptor_refuses_a_hello(dialer_signer: KeySigner, chain_id: int, reason: str) -> None:
    hello = DialerHandshake(dialer_signer, chain_id, ACCEPTOR.address).hello()
    with pytest.raises(HandshakeRefused) as refused:
        acceptor().on_hello(hello)
    assert refused.value.reason == reason


def test_the_acceptor_refuses_a_dialer_without_the_key_of_the_address_it_claims() -> None:
    impostor = LyingSigner(PrivateKey(), claimed=DIALER.address)
    dialer = DialerHandshake(impostor, CHAIN_ID, ACCEPTOR.address)
    end = acceptor()
    auth, _ = dialer.on_reply(end.on_hello(dialer.hello()))  # the impostor trusts the acceptor
    with pytest.raises(HandshakeRefused) as refused:
        end.on_auth(auth)
    assert refused.value.reason == BAD_SIGNATURE


def test_the_dialer_refuses_an_acceptor_without_the_key_of_the_address_it_claims() -> None:
    dialer = DialerHandshake(DIALER, CHAIN_ID, ACCEPTOR.address)
    impostor = AcceptorHandshake(
        LyingSigner(PrivateKey(), claimed=ACCEPTOR.address), CHAIN_ID, lambda _: True
    )
    with pytest.raises(HandshakeRefused) as refused:
        dialer.on_reply(impostor.on_hello(dialer.hello()))
    assert refused.value.reason == BAD_SIGNATURE


def test_the_dialer_refuses_another_validator_than_the_one_it_dialled() -> None:
    dialer = DialerHandshake(DIALER, CHAIN_ID, ACCEPTOR.address)
    other = AcceptorHandshake(OUTSIDER, CHAIN_ID, lambda _: True)
    with pytest.raises(HandshakeRefused) as refused:
        dialer.on_reply(other.on_hello(dialer.hello()))
    assert refused.value.reason == UNEXPECTED_PEER


def test_a_signature_from_another_connection_is_refused() -> None:
    """An AUTH answers this connection's challenges only (no replay)."""
    first = DialerHandshake(DIALER, CHAIN_ID, ACCEPTOR.address)
    first_end = acceptor()
    old_auth, _ = first.on_reply(first_end.on_hello(first.hello()))

    second_end = acceptor()
    second_end.on_hello(first.hello())  # a replayed HELLO gets a new challenge
    with pytest.raises(HandshakeRefused) as refused:
        second_end.on_auth(old_auth)
    assert refused.value.reason == BAD_SIGNATURE


def test_the_acceptors_signature_cannot_be_reflected_as_the_dialers() -> None:
    """Each role signs its own digest: the REPLY's signature is no AUTH."""
    dialer = DialerHandshake(DIALER, CHAIN_ID, ACCEPTOR.address)
    end = acceptor()
    reply = end.on_hello(dialer.hello())
    with pytest.raises(HandshakeRefused) as refused:
        end.on_auth(reply[-65:])
    assert refused.value.reason == BAD_SIGNATURE


def test_a_changed_ephemeral_key_breaks_the_signature() -> None:
    """A man in the middle cannot swap in its own key-exchange half."""
    dialer = DialerHandshake(DIALER, CHAIN_ID, ACCEPTOR.address)
    reply = bytearray(acceptor().on_hello(dialer.hello()))
    challenge_end = 5 + 20 + CHALLENGE_LENGTH
    reply[challenge_end - 1] ^= 1
    with pytest.raises(HandshakeRefused) as refused:
        dialer.on_reply(bytes(reply))
    assert refused.value.reason == BAD_SIGNATURE


def test_a_low_order_key_gives_no_secret() -> None:
    """Even signed, an all-zero X25519 key is refused (no shared secret)."""
    dialer = DialerHandshake(DIALER, CHAIN_ID, ACCEPTOR.address)
    hello = dialer.hello()
    end = acceptor()
    reply = end.on_hello(hello)
    # A dishonest acceptor (with the right key) that sends a zero ephemeral key:
    prefix, address = reply[:5], reply[5:25]
    challenge = reply[25:57] + bytes(32)
    digest = auth_digest(
        Role.ACCEPTOR, CHAIN_ID, hello[-CHALLENGE_LENGTH:], challenge, ACCEPTOR.address, DIALER.address
    )
    forged = prefix + address + challenge + ACCEPTOR.sign_hash(digest)
    with pytest.raises(HandshakeRefused) as refused:
        dialer.on_reply(forged)
    assert refused.value.reason == KEY_EXCHANGE


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(lambda hello: hello[:-1], MALFORMED, id="short"),
        pytest.param(lambda hello: hello + b"\0", MALFORMED, id="long"),
        pytest.param(lambda hello: b"XXXX" + hello[4:], MALFORMED, id="magic"),
        pytest.param(lambda hello: hello[:4] + b"\x02" + hello[5:], WRONG_VERSION, id="version"),
    ],
)
def test_a_malformed_hello_is_refused(change, reason: str) -> None:  # type: ignore[no-untyped-def]
    hello = DialerHandshake(DIALER, CHAIN_ID, ACCEPTOR.address).hello()
    with pytest.raises(HandshakeRefused) as refused:
        acceptor().on_hello(change(hello))
    assert refused.value.reason == reason


def test_auth_before_hello_is_refused() -> None:
    with pytest.raises(HandshakeRefused) as refused:
        acceptor().on_auth(bytes(65))
    assert refused.value.reason == MALFORMED


def test_recovery_takes_either_form_of_v_and_rejects_junk() -> None:
    digest = bytes(range(32))
    signature = DIALER.sign_hash(digest)
    assert recover_address(digest, signature) == DIALER.address
    assert recover_address(digest, signature[:64] + bytes([signature[64] + 27])) == DIALER.address
    assert recover_address(digest, signature[:64] + b"\x05") is None
    assert recover_address(digest, signature[:64]) is None
    assert recover_address(digest[:31], signature) is None
    assert recover_address(digest, bytes(65)) is None


def test_the_digest_binds_role_chain_and_both_addresses() -> None:
    challenges = (b"\x01" * CHALLENGE_LENGTH, b"\x02" * CHALLENGE_LENGTH)
    a, b = Address(b"\xaa" * 20), Address(b"\xbb" * 20)
    base = auth_digest(Role.DIALER, CHAIN_ID, *challenges, a, b)
    assert (
        len(
            {
                base,
                auth_digest(Role.ACCEPTOR, CHAIN_ID, *challenges, a, b),
                auth_digest(Role.DIALER, CHAIN_ID + 1, *challenges, a, b),
                auth_digest(Role.DIALER, CHAIN_ID, *challenges, b, a),
                auth_digest(Role.DIALER, CHAIN_ID, *reversed(challenges), a, b),
            }
        )
        == 5
    )
