"""Handing the ledger secrets from one validator's enclave to another's.

The validators of a network share one set of ledger secrets (what sealed data is sealed
with), so that any of them reads the ledger and a node that joins or catches up reads
what the others stored. They travel only between attested enclaves:

1. The joining enclave makes a quote whose report data is `transfer_report_data(chain
   id)`: it binds the request to this purpose and chain.
2. The giving enclave checks the quote (a trusted attestation root, a measurement
   governance approved, fresh, that report data) and that the quoted node is one of
   governance's validators, then encrypts its secrets to the quote's node key: ECIES
   over secp256k1: an ephemeral key, ECDH with the node key, HKDF-SHA256, AES-256-GCM,
   with the recipient's key and the chain id as associated data.
3. Only the enclave that holds that node key opens the answer.

Anyone may relay the request and the answer: they read nothing from either.
"""

from __future__ import annotations

import os

from coincurve import PrivateKey, PublicKey
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_hash.auto import keccak

from .identity import NodeIdentity
from .sealing import KEY_BYTES, NONCE_BYTES, LedgerSecrets, UnsealError

TRANSFER_INFO = b"conclave/ledger-secrets-transfer/v1"
FORMAT = 1
PUBLIC_KEY_BYTES = 33


def transfer_report_data(chain_id: int) -> bytes:
    """What a quote asking for the ledger secrets of chain `chain_id` carries as report data."""
    return keccak(TRANSFER_INFO + chain_id.to_bytes(32, "big"))


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=KEY_BYTES, salt=ephemeral + recipient, info=TRANSFER_INFO).derive(
        shared
    )


def _associated(recipient: bytes, chain_id: int) -> bytes:
    return TRANSFER_INFO + recipient + chain_id.to_bytes(32, "big")


def wrap_secrets(secrets: LedgerSecrets, recipient_public_key: bytes, chain_id: int) -> bytes:
    """`secrets` encrypted to the node key `recipient_public_key` (compressed, 33 bytes):
    `format ‖ ephemeral public key ‖ nonce ‖ ciphertext`."""
    recipient = PublicKey(recipient_public_key).format(compressed=True)
    ephemeral = PrivateKey()
    ephemeral_public = ephemeral.public_key.format(compressed=True)
    key = _key(ephemeral.ecdh(recipient), ephemeral_public, recipient)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, secrets.to_bytes(), _associated(recipient, chain_id))
    return bytes([FORMAT]) + ephemeral_public + nonce + sealed


def unwrap_secrets(identity: NodeIdentity, blob: bytes, chain_id: int) -> LedgerSecrets:
    """The secrets `wrap_secrets` encrypted to `identity`'s key; UnsealError otherwise."""
    header = 1 + PUBLIC_KEY_BYTES + NONCE_BYTES
    if len(blob) < header + 16 or blob[0] != FORMAT:
        raise UnsealError("not ledger secrets wrapped for a node")
    ephemeral_public, nonce, sealed = (
        blob[1 : 1 + PUBLIC_KEY_BYTES],
        blob[1 + PUBLIC_KEY_BYTES : header],
        blob[header:],
    )
    recipient = identity.public_key
    try:
        key = _key(identity.key.ecdh(ephemeral_public), ephemeral_public, recipient)
        return LedgerSecrets.from_bytes(AESGCM(key).decrypt(nonce, sealed, _associated(recipient, chain_id)))
    except (InvalidTag, ValueError):
        raise UnsealError("these ledger secrets were not wrapped for this node and chain") from None
