"""Sealing: authenticated encryption of what the enclave keeps at rest.

Two kinds of key seal data, both AES-256-GCM with a fresh 96-bit nonce per blob:

- the *sealing key*, derived from the platform secret and the enclave measurement
  (HKDF-SHA256), seals what belongs to one node (its identity key, its copy of the ledger
  secrets). Other enclave code, with another measurement, derives another key and cannot
  unseal it;
- the *ledger secrets*, shared by the validators, seal confidential ledger entries. A blob
  names the secret version that sealed it, so after a rotation new blobs use the new
  secret and old blobs stay readable.

A sealed blob is `version byte ‖ nonce ‖ ciphertext-and-tag`, bound by the associated
data to the purpose it was sealed for: a blob sealed for one purpose does not unseal for
another.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
BLOB_FORMAT = 1
SEALING_KEY_INFO = b"conclave/sealing-key/v1"


class UnsealError(Exception):
    """A blob that does not unseal: another key, another purpose, or a changed byte."""


def derive_sealing_key(platform_secret: bytes, measurement: bytes) -> bytes:
    """The key that seals one enclave's data on one platform: HKDF(secret, measurement)."""
    if len(platform_secret) < KEY_BYTES:
        raise ValueError(f"a platform secret has at least {KEY_BYTES} bytes")
    return HKDF(algorithm=SHA256(), length=KEY_BYTES, salt=measurement, info=SEALING_KEY_INFO).derive(
        platform_secret
    )


def seal(key: bytes, plaintext: bytes, purpose: bytes) -> bytes:
    """Encrypt and authenticate `plaintext` for `purpose` under `key`."""
    nonce = os.urandom(NONCE_BYTES)
    return bytes([BLOB_FORMAT]) + nonce + AESGCM(key).encrypt(nonce, plaintext, purpose)


def unseal(key: bytes, blob: bytes, purpose: bytes) -> bytes:
    """The plaintext `seal(key, plaintext, purpose)` produced; UnsealError otherwise."""
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[0] != BLOB_FORMAT:
        raise UnsealError("not a sealed blob of a known format")
    nonce, ciphertext = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, purpose)
    except InvalidTag:
        raise UnsealError("the blob does not unseal with this key for this purpose") from None


class LedgerSecrets:
    """The versioned ledger secrets: seal with the newest, unseal with the one a blob names."""

    def __init__(self, secrets: Mapping[int, bytes]) -> None:
        if not secrets:
            raise ValueError("at least one ledger secret is needed")
        for version, secret in secrets.items():
            if version < 0 or len(secret) != KEY_BYTES:
                raise ValueError(f"ledger secret {version}: expected {KEY_BYTES} bytes and a version >= 0")
        self._secrets = dict(secrets)

    @classmethod
    def create(cls) -> LedgerSecrets:
        """A first ledger secret (version 0), fresh from the platform's random source."""
        return cls({0: AESGCM.generate_key(bit_length=256)})

    @property
    def current_version(self) -> int:
        return max(self._secrets)

    def rotated(self) -> LedgerSecrets:
        """These secrets plus a new one, which seals from now on."""
        return LedgerSecrets({**self._secrets, self.current_version + 1: AESGCM.generate_key(bit_length=256)})

    def seal(self, plaintext: bytes, purpose: bytes) -> bytes:
        """`version (4 bytes, big-endian) ‖ sealed blob`, under the current secret."""
        version = self.current_version
        return struct.pack(">I", version) + seal(self._secrets[version], plaintext, purpose)

    def unseal(self, blob: bytes, purpose: bytes) -> bytes:
        if len(blob) < 4:
            raise UnsealError("not a ledger-sealed blob")
        (version,) = struct.unpack(">I", blob[:4])
        secret = self._secrets.get(version)
        if secret is None:
            raise UnsealError(f"ledger secret version {version} is not known to this enclave")
        return unseal(secret, blob[4:], purpose)

    def to_bytes(self) -> bytes:
        """`version (4 bytes) ‖ secret (32 bytes)` for each version, in order (to seal it)."""
        return b"".join(
            struct.pack(">I", version) + secret for version, secret in sorted(self._secrets.items())
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> LedgerSecrets:
        entry = 4 + KEY_BYTES
        if not raw or len(raw) % entry:
            raise ValueError(f"ledger secrets are {entry}-byte entries, got {len(raw)} bytes")
        entries = [raw[i : i + entry] for i in range(0, len(raw), entry)]
        return cls({struct.unpack(">I", item[:4])[0]: item[4:] for item in entries})

    def export(self) -> dict[int, bytes]:
        """The secrets by version, for sealing to disk or to a joining validator (in the enclave)."""
        return dict(self._secrets)
