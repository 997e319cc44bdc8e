"""The handshake that authenticates two validators to each other, without I/O.

A validator is its address: the secp256k1 node key its enclave holds, whose quote the
members approved when governance added it. A connection is trusted once each end has
proved, by signing with that key, that it is the validator the other expects. Three
messages, each sent as one length-prefixed plaintext frame (`frames.encode_plain`):

    HELLO   dialer → acceptor   MAGIC ‖ version ‖ chain id (8) ‖ dialer address ‖ challenge_d
    REPLY   acceptor → dialer   MAGIC ‖ version ‖ acceptor address ‖ challenge_a ‖ signature_a
    AUTH    dialer → acceptor   signature_d

A challenge is 64 fresh bytes: a random nonce (32) and an ephemeral X25519 public key
(32), made for this connection only. Each side signs, with its node key,

    auth_digest(role, chain id, challenge_d, challenge_a, own address, peer address)
      = keccak(DOMAIN ‖ role ‖ chain id ‖ challenge_d ‖ challenge_a ‖ own ‖ peer)

so a signature answers both challenges, names both ends in their roles and the chain,
and cannot be replayed on another connection, reflected back to its signer or used
elsewhere (the domain tag). The dialer accepts the REPLY only if its signature recovers
to the address it dialled; the acceptor answers a HELLO only if the claimed dialer is in
the current validator set, and accepts the AUTH only if it recovers to that address.

Both challenges carry ephemeral keys that the signatures cover, so the two ends share an
X25519 secret that no one else has, not even someone who saw the handshake or relayed it
(a relaying attacker gets a connection whose frames it can neither read nor forge).
`session_keys` derives one AES-256-GCM key per direction from it with HKDF-SHA256, salted
with a hash of the transcript; `frames` uses them for every frame afterwards.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_hash.auto import keccak

from evm_runtime.types import Address, Hash32

from ..signing import recover_validator
from .errors import HandshakeRefused
from .interfaces import Signer

DOMAIN = b"conclave/transport/handshake/v1"
KEY_INFO = b"conclave/transport/session-keys/v1"
MAGIC = b"CNCL"
VERSION = 1
CHAIN_ID_LENGTH = 8
ADDRESS_LENGTH = 20
NONCE_LENGTH = 32
EPHEMERAL_KEY_LENGTH = 32
CHALLENGE_LENGTH = NONCE_LENGTH + EPHEMERAL_KEY_LENGTH
SIGNATURE_LENGTH = 65
SESSION_KEY_LENGTH = 32

_PREFIX = MAGIC + bytes([VERSION])
HELLO_LENGTH = len(_PREFIX) + CHAIN_ID_LENGTH + ADDRESS_LENGTH + CHALLENGE_LENGTH
REPLY_LENGTH = len(_PREFIX) + ADDRESS_LENGTH + CHALLENGE_LENGTH + SIGNATURE_LENGTH
AUTH_LENGTH = SIGNATURE_LENGTH
MAX_MESSAGE = 256
"""No handshake message is longer: a longer length prefix is refused before reading."""

# Why a handshake is refused (the transport counts refusals by these names).
MALFORMED = "malformed"
WRONG_VERSION = "version"
WRONG_CHAIN = "chain_id"
NOT_VALIDATOR = "not_validator"
SELF = "self"
UNEXPECTED_PEER = "unexpected_peer"
BAD_SIGNATURE = "bad_signature"
KEY_EXCHANGE = "key_exchange"


class Role(IntEnum):
    """Which end of the connection signs: the digest differs, so neither can stand in for the other."""

    DIALER = 1
    ACCEPTOR = 2


# ----------------------------------------------------------------------------------------
# Digests, signatures, keys
# ----------------------------------------------------------------------------------------


def auth_digest(
    role: Role,
    chain_id: int,
    dialer_challenge: bytes,
    acceptor_challenge: bytes,
    own: Address,
    peer: Address,
) -> Hash32:
    """What the end playing `role` signs to prove it is `own`, talking to `peer`."""
    return Hash32(
        keccak(
            DOMAIN
            + bytes([role])
            + chain_id.to_bytes(CHAIN_ID_LENGTH, "big")
            + dialer_challenge
            + acceptor_challenge
            + own
            + peer
        )
    )


def recover_address(digest: bytes, signature: bytes) -> Address | None:
    """The address whose key made `signature` as a validator signature over `digest`
    (`ledger.signing`); None if it is not a signature."""
    return recover_validator(digest, signature)


def _signed(signer: Signer, digest: Hash32) -> bytes:
    signature = bytes(signer.sign_hash(digest))
    if len(signature) != SIGNATURE_LENGTH:
        raise ValueError(f"the signer gave {len(signature)} bytes, not a {SIGNATURE_LENGTH}-byte signature")
    return signature


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """One AES-256-GCM key per direction."""

    dialer_to_acceptor: bytes
    acceptor_to_dialer: bytes


def session_keys(
    shared_secret: bytes,
    chain_id: int,
    dialer: Address,
    acceptor: Address,
    dialer_challenge: bytes,
    acceptor_challenge: bytes,
) -> SessionKeys:
    """HKDF-SHA256 of the X25519 secret, salted with the transcript's hash."""
    transcript = hashlib.sha256(
        DOMAIN
        + chain_id.to_bytes(CHAIN_ID_LENGTH, "big")
        + dialer
        + acceptor
        + dialer_challenge
        + acceptor_challenge
    ).digest()
    material = HKDF(
        algorithm=hashes.SHA256(), length=2 * SESSION_KEY_LENGTH, salt=transcript, info=KEY_INFO
    ).derive(shared_secret)
    return SessionKeys(material[:SESSION_KEY_LENGTH], material[SESSION_KEY_LENGTH:])


class _Challenge:
    """A fresh nonce and ephemeral X25519 key: this end's challenge, and its half of the secret."""

    def __init__(self) -> None:
        self._key = X25519PrivateKey.generate()
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.bytes = os.urandom(NONCE_LENGTH) + public

    def shared_secret(self, peer_challenge: bytes) -> bytes:
        peer_key = X25519PublicKey.from_public_bytes(peer_challenge[NONCE_LENGTH:])
        try:
            return self._key.exchange(peer_key)
        except ValueError as error:  # a low-order point: no secret
            raise HandshakeRefused(KEY_EXCHANGE, str(error)) from error


def _check_chain_id(chain_id: int) -> None:
    if not 0 <= chain_id < 2 ** (8 * CHAIN_ID_LENGTH):
        raise ValueError(f"chain id {chain_id} does not fit in {CHAIN_ID_LENGTH} bytes")


def _check_prefix(data: bytes, length: int) -> None:
    if len(data) != length or not data.startswith(MAGIC):
        raise HandshakeRefused(MALFORMED, f"{len(data)} bytes")
    if data[len(MAGIC)] != VERSION:
        raise HandshakeRefused(WRONG_VERSION, f"version {data[len(MAGIC)]}")


# ----------------------------------------------------------------------------------------
# The two ends
# ----------------------------------------------------------------------------------------


class DialerHandshake:
    """The end that connected, knowing which validator it meant to reach.

    `hello()` first; then `on_reply(reply)` gives the AUTH to send and the session keys,
    or raises `HandshakeRefused`.
    """

    def __init__(self, signer: Signer, chain_id: int, expected: Address) -> None:
        _check_chain_id(chain_id)
        self._signer = signer
        self._chain_id = chain_id
        self._own = signer.address
        self._expected = expected
        self._challenge = _Challenge()

    def hello(self) -> bytes:
        return _PREFIX + self._chain_id.to_bytes(CHAIN_ID_LENGTH, "big") + self._own + self._challenge.bytes

    def on_reply(self, reply: bytes) -> tuple[bytes, SessionKeys]:
        _check_prefix(reply, REPLY_LENGTH)
        at = len(_PREFIX)
        acceptor = Address(reply[at : at + ADDRESS_LENGTH])
        at += ADDRESS_LENGTH
        acceptor_challenge = reply[at : at + CHALLENGE_LENGTH]
        signature = reply[at + CHALLENGE_LENGTH :]
        if acceptor != self._expected:
            raise HandshakeRefused(
                UNEXPECTED_PEER, f"0x{acceptor.hex()} answered for 0x{self._expected.hex()}"
            )
        mine = self._challenge.bytes
        digest = auth_digest(Role.ACCEPTOR, self._chain_id, mine, acceptor_challenge, acceptor, self._own)
        if recover_address(digest, signature) != acceptor:
            raise HandshakeRefused(BAD_SIGNATURE, f"the reply is not signed by 0x{acceptor.hex()}")
        secret = self._challenge.shared_secret(acceptor_challenge)
        auth = _signed(
            self._signer,
            auth_digest(Role.DIALER, self._chain_id, mine, acceptor_challenge, self._own, acceptor),
        )
        keys = session_keys(secret, self._chain_id, self._own, acceptor, mine, acceptor_challenge)
        return auth, keys


class AcceptorHandshake:
    """The end that was connected to: it learns who the dialer claims to be from HELLO.

    `on_hello(hello)` gives the REPLY (refusing a dialer that `is_validator` rejects);
    `on_auth(auth)` gives the authenticated dialer and the session keys.
    """

    def __init__(self, signer: Signer, chain_id: int, is_validator: Callable[[Address], bool]) -> None:
        _check_chain_id(chain_id)
        self._signer = signer
        self._chain_id = chain_id
        self._own = signer.address
        self._is_validator = is_validator
        self._challenge = _Challenge()
        self._dialer: Address | None = None
        self._dialer_challenge = b""

    @property
    def claimed_dialer(self) -> Address | None:
        """Who the HELLO said it came from (not yet proven)."""
        return self._dialer

    def on_hello(self, hello: bytes) -> bytes:
        _check_prefix(hello, HELLO_LENGTH)
        at = len(_PREFIX)
        chain_id = int.from_bytes(hello[at : at + CHAIN_ID_LENGTH], "big")
        at += CHAIN_ID_LENGTH
        dialer = Address(hello[at : at + ADDRESS_LENGTH])
        dialer_challenge = hello[at + ADDRESS_LENGTH :]
        self._dialer = dialer
        if chain_id != self._chain_id:
            raise HandshakeRefused(WRONG_CHAIN, f"chain {chain_id}, not {self._chain_id}")
        if dialer == self._own:
            raise HandshakeRefused(SELF, "a connection from this node's own address")
        if not self._is_validator(dialer):
            raise HandshakeRefused(NOT_VALIDATOR, f"0x{dialer.hex()} is not a validator")
        self._dialer_challenge = dialer_challenge
        mine = self._challenge.bytes
        signature = _signed(
            self._signer,
            auth_digest(Role.ACCEPTOR, self._chain_id, dialer_challenge, mine, self._own, dialer),
        )
        return _PREFIX + self._own + mine + signature

    def on_auth(self, auth: bytes) -> tuple[Address, SessionKeys]:
        dialer = self._dialer
        if dialer is None or not self._dialer_challenge:
            raise HandshakeRefused(MALFORMED, "AUTH before HELLO")
        if len(auth) != AUTH_LENGTH:
            raise HandshakeRefused(MALFORMED, f"{len(auth)} bytes of AUTH")
        mine = self._challenge.bytes
        digest = auth_digest(Role.DIALER, self._chain_id, self._dialer_challenge, mine, dialer, self._own)
        if recover_address(digest, auth) != dialer:
            raise HandshakeRefused(BAD_SIGNATURE, f"the AUTH is not signed by 0x{dialer.hex()}")
        secret = self._challenge.shared_secret(self._dialer_challenge)
        keys = session_keys(secret, self._chain_id, dialer, self._own, self._dialer_challenge, mine)
        return dialer, keys
