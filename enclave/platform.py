"""The emulated trusted-execution platform: what the hardware would provide.

A real TEE has a vendor root key, a per-processor attestation key certified by that root,
and a per-processor secret from which sealing keys derive. Here:

- an `AttestationRoot` (Ed25519) stands for the vendor; its public key is the network's
  attestation root, which peers and governance trust;
- a `Platform` holds an attestation key certified by the root and a 32-byte platform
  secret. Only enclave code asks the platform for quotes and sealing keys.

Keys are Ed25519 (RFC 8032), stored raw; a certificate is the root's signature over the
platform key with a domain prefix, so it cannot be confused with any other signature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PLATFORM_CERTIFICATE_DOMAIN = b"conclave/platform-certificate/v1"
SECRET_BYTES = 32


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes_raw()


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is the holder of `public_key`'s signature over `message`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class AttestationRoot:
    """The emulated vendor: certifies platforms' attestation keys."""

    key: Ed25519PrivateKey

    @classmethod
    def create(cls) -> AttestationRoot:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> AttestationRoot:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def to_bytes(self) -> bytes:
        return _raw_private(self.key)

    @property
    def public_key(self) -> bytes:
        return public_bytes(self.key)

    def certify(self, platform_key: bytes) -> bytes:
        """The certificate of a platform attestation key: the root's signature over it."""
        return self.key.sign(PLATFORM_CERTIFICATE_DOMAIN + platform_key)

    def new_platform(self) -> Platform:
        """A new emulated processor certified by this root."""
        key = Ed25519PrivateKey.generate()
        return Platform(key=key, certificate=self.certify(public_bytes(key)), secret=os.urandom(SECRET_BYTES))


def certificate_is_valid(root_key: bytes, platform_key: bytes, certificate: bytes) -> bool:
    return ed25519_verify(root_key, certificate, PLATFORM_CERTIFICATE_DOMAIN + platform_key)


@dataclass(frozen=True)
class Platform:
    """One emulated processor: an attestation key with its certificate, and a secret."""

    key: Ed25519PrivateKey
    certificate: bytes
    secret: bytes

    @property
    def public_key(self) -> bytes:
        return public_bytes(self.key)

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    def to_bytes(self) -> bytes:
        """key (32) ‖ certificate (64) ‖ secret (32)."""
        return _raw_private(self.key) + self.certificate + self.secret

    @classmethod
    def from_bytes(cls, raw: bytes) -> Platform:
        if len(raw) != 32 + 64 + SECRET_BYTES:
            raise ValueError("a platform record has 128 bytes: key, certificate, secret")
        return cls(Ed25519PrivateKey.from_private_bytes(raw[:32]), raw[32:96], raw[96:])
