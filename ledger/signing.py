"""What a validator's key signs: never a bare hash the host hands it.

A validator's enclave key is also its node's Ethereum account key, so the enclave does not
sign a 32-byte hash as given (it could be a transaction's signing hash). It signs
`validator_digest(hash) = keccak(0x19 ‖ "Conclave validator:\\n" ‖ hash)`: the leading 0x19
byte (EIP-191) starts no RLP, so no transaction's signing hash has this form. Consensus
messages, commit seals and transport handshakes are signed and checked this way, and a
client checking a commit certificate recovers each seal over this digest.
"""

from __future__ import annotations

from coincurve import PublicKey
from eth_utils import keccak

from evm_runtime.types import Address, Hash32

VALIDATOR_PREFIX = b"\x19Conclave validator:\n"
SIGNATURE_LENGTH = 65


def validator_digest(message_hash: bytes) -> Hash32:
    """What a validator's key signs to sign `message_hash`."""
    if len(message_hash) != 32:
        raise ValueError("a validator signs a 32-byte hash")
    return Hash32(keccak(VALIDATOR_PREFIX + bytes(message_hash)))


def recover_validator(message_hash: bytes, signature: bytes) -> Address | None:
    """The address whose key made `signature` (r ‖ s ‖ v, v in 0..1 or 27..28) as a validator
    signature over `message_hash`; None if it is not one."""
    if len(message_hash) != 32 or len(signature) != SIGNATURE_LENGTH:
        return None
    v = signature[64] - 27 if signature[64] in (27, 28) else signature[64]
    if v > 1:
        return None
    try:
        public = PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes([v]), validator_digest(message_hash), hasher=None
        )
    except ValueError:
        return None
    return Address(keccak(public.format(compressed=False)[1:])[12:])
