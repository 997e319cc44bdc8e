"""A node's identity: a secp256k1 key made in the enclave, kept only sealed.

Its address (the last 20 bytes of keccak over the uncompressed public key, as for any
Ethereum account) is the node's validator address; its public key goes into quotes.
"""

from __future__ import annotations

from dataclasses import dataclass

from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak

from evm_runtime.types import Address
from ledger.signing import validator_digest

from .sealing import seal, unseal

IDENTITY_PURPOSE = b"conclave/node-identity/v1"


@dataclass(frozen=True)
class NodeIdentity:
    key: PrivateKey

    @classmethod
    def create(cls) -> NodeIdentity:
        return cls(PrivateKey())

    @property
    def public_key(self) -> bytes:
        """The compressed public key (33 bytes)."""
        return self.key.public_key.format(compressed=True)

    @property
    def address(self) -> Address:
        return _address_of(self.key.public_key)

    def sign_hash(self, message_hash: bytes) -> bytes:
        """A recoverable signature `r ‖ s ‖ v` (v in 0..1) over a 32-byte hash."""
        if len(message_hash) != 32:
            raise ValueError("sign a 32-byte hash")
        return self.key.sign_recoverable(message_hash, hasher=None)

    def sign_as_validator(self, message_hash: bytes) -> bytes:
        """A validator signature over `message_hash` (`ledger.signing`): consensus messages,
        commit seals and transport handshakes, never a transaction."""
        return self.sign_hash(validator_digest(message_hash))

    @property
    def validator_key(self) -> ValidatorKey:
        """This key as the consensus and the transport's `Signer`."""
        return ValidatorKey(self)

    def sealed(self, sealing_key: bytes) -> bytes:
        return seal(sealing_key, self.key.secret, IDENTITY_PURPOSE)

    @classmethod
    def unsealed(cls, sealing_key: bytes, blob: bytes) -> NodeIdentity:
        """The identity `sealed` produced; UnsealError under another sealing key."""
        return cls(PrivateKey(unseal(sealing_key, blob, IDENTITY_PURPOSE)))


def _address_of(public: PublicKey) -> Address:
    return Address(keccak(public.format(compressed=False)[1:])[12:])


def address_of(public_key: bytes) -> Address:
    """The Ethereum address of a (compressed or not) secp256k1 public key."""
    return _address_of(PublicKey(public_key))


class ValidatorKey:
    """A node identity as a validator's `Signer`: it signs `validator_digest`s only."""

    def __init__(self, identity: NodeIdentity) -> None:
        self._identity = identity

    @property
    def address(self) -> Address:
        return self._identity.address

    def sign_hash(self, message_hash: bytes) -> bytes:
        return self._identity.sign_as_validator(message_hash)
