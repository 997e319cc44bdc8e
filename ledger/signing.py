"""What a validator's key signs: never a bare hash the host hands it.

A validator's enclave key is also its node's Ethereum account key, so the enclave does not
sign a 32-byte hash as given (it could be a transaction's signing hash). It signs
`validator_digest(hash) = keccak(0x19 ‖ "Conclave validator:\\n" ‖ hash)`: the leading 0x19
byte (EIP-191) starts no RLP, so no transaction's signing hash has this form. Consensus
messages, commit seals and transport handshakes are signed and checked this way, and a
client checking a commit certificate recovers each seal over this digest.
"""

from __future__ import annotations

from eth_utils import keccak

from evm_runtime.signatures import InvalidSignature, recover_signer
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
    if len(message_hash) != 32:
        return None
    try:
        return recover_signer(validator_digest(message_hash), signature)
    except InvalidSignature:
        return None
