"""Recovering who signed: a transaction's sender, once, straight from its encoding; the
signer of a 32-byte hash (`recover_signer`: validator votes, member approvals).

The message a sender signs is the transaction's RLP list without the signature fields
(EIP-155 for legacy transactions: with chain id, 0, 0 in their place; EIP-2718 typed
transactions: the type byte before the list). It is cut out of the encoded transaction
rather than re-encoded, and the public key is recovered with libsecp256k1.

The rule for signatures (EIP-2): 0 < r < n, 0 < s <= n/2, y parity 0 or 1. A signature
that breaks it, or from which no key can be recovered, is refused.
"""

from __future__ import annotations

import coincurve
import rlp
from eth_hash.auto import keccak

from .types import Address

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SIGNATURE_FIELDS = 3
SIGNATURE_BYTES = 65


class InvalidSignature(ValueError):
    """The signature is malformed or recovers no key."""


def _item_end(data: bytes, position: int) -> int:
    """Where the RLP item starting at `position` ends."""
    prefix = data[position]
    if prefix < 0x80:
        return position + 1
    if prefix < 0xB8:
        return position + 1 + prefix - 0x80
    if prefix < 0xC0:
        size = prefix - 0xB7
        return position + 1 + size + int.from_bytes(data[position + 1 : position + 1 + size], "big")
    if prefix < 0xF8:
        return position + 1 + prefix - 0xC0
    size = prefix - 0xF7
    return position + 1 + size + int.from_bytes(data[position + 1 : position + 1 + size], "big")


def _list_items(encoded: bytes) -> list[bytes]:
    """The encoded items of an encoded RLP list (already known to be well formed)."""
    prefix = encoded[0]
    position = 1 if prefix < 0xF8 else 1 + prefix - 0xF7
    items = []
    while position < len(encoded):
        end = _item_end(encoded, position)
        items.append(encoded[position:end])
        position = end
    return items


def _list(items: list[bytes]) -> bytes:
    body = b"".join(items)
    if len(body) < 56:
        return bytes([0xC0 + len(body)]) + body
    size = (len(body).bit_length() + 7) // 8
    return bytes([0xF7 + size]) + len(body).to_bytes(size, "big") + body


def signing_hash(raw: bytes, chain_id: int | None) -> bytes:
    """The hash the sender of encoded transaction `raw` signed."""
    if raw[0] < 0xC0:
        items = _list_items(raw[1:])
        return keccak(raw[:1] + _list(items[:-SIGNATURE_FIELDS]))
    items = _list_items(raw)
    unsigned = items[:-SIGNATURE_FIELDS]
    if chain_id is not None:
        unsigned += [rlp.encode(chain_id), b"\x80", b"\x80"]
    return keccak(_list(unsigned))


def recover_sender(message_hash: bytes, y_parity: int, r: int, s: int) -> Address:
    """The address whose key made signature (y_parity, r, s) over `message_hash`."""
    if y_parity not in (0, 1):
        raise InvalidSignature(f"y parity must be 0 or 1, got {y_parity}")
    if not 0 < r < SECP256K1_N:
        raise InvalidSignature("r is out of range")
    if not 0 < s <= SECP256K1_N // 2:
        raise InvalidSignature("s is out of range (EIP-2 requires s <= n/2)")
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(signature, message_hash, hasher=None)
    except ValueError as exc:
        raise InvalidSignature("no public key can be recovered from the signature") from exc
    return Address(keccak(public_key.format(compressed=False)[1:])[12:])


def recover_signer(message_hash: bytes, signature: bytes) -> Address:
    """The address whose key made `signature` over the 32-byte `message_hash`: 65 bytes
    r ‖ s ‖ v, v the y parity (0 or 1, or 27 or 28 as Ethereum tools write it)."""
    if len(message_hash) != 32:
        raise InvalidSignature(f"a signed hash has 32 bytes, not {len(message_hash)}")
    if len(signature) != SIGNATURE_BYTES:
        raise InvalidSignature(f"a signature has {SIGNATURE_BYTES} bytes (r ‖ s ‖ v), not {len(signature)}")
    v = signature[64] - 27 if signature[64] in (27, 28) else signature[64]
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
    return recover_sender(bytes(message_hash), v, r, s)
