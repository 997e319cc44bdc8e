"""Attestation quotes: proof of which code a node runs and which key it holds.

A quote binds, under the platform's attestation key:

- the enclave *measurement*: SHA-256 over the trusted code that runs (every source file
  of the trusted packages, by relative path, and the versions of the execution libraries);
- the node's public key (secp256k1, compressed), whose address is the validator address;
- 64 bytes of report data the caller chose (a nonce, a hash of a message);
- the time it was issued.

A verifier trusts a quote if the platform key is certified by a trusted attestation root,
the platform signed the quote, the measurement is one governance approved, the quote is
fresh, and (if asked) the report data is the one expected. Any changed byte fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields, replace
from importlib import metadata
from pathlib import Path

import rlp
from rlp.sedes import Binary, big_endian_int

from evm_runtime.exceptions import InvalidRequest
from governance.actions import AttestedNode

from .identity import address_of
from .platform import Platform, certificate_is_valid, ed25519_verify

QUOTE_VERSION = 1
QUOTE_DOMAIN = b"conclave/quote/v1"
REPORT_DATA_BYTES = 64
MEASUREMENT_BYTES = 32
MAX_QUOTE_BYTES = 1024
CLOCK_SKEW_SECONDS = 5

TRUSTED_PACKAGES = ("enclave", "evm_runtime", "governance", "ledger")
"""The project packages loaded by the enclave: their sources are what the measurement covers."""

EXECUTION_LIBRARIES = (
    "py-evm",
    "eth-hash",
    "rlp",
    "trie",
    "coincurve",
    "cryptography",
    "eth-account",
    "pyjwt",
    "cbor2",
)
"""Libraries whose versions the measurement covers (execution, cryptography, signatures,
login tokens and the boundary's encoding)."""


class AttestationError(Exception):
    """A quote that must not be trusted, with the reason."""


class _QuoteFields(rlp.Serializable):
    fields = [
        ("version", big_endian_int),
        ("measurement", Binary.fixed_length(MEASUREMENT_BYTES)),
        ("node_public_key", Binary.fixed_length(33)),
        ("report_data", Binary.fixed_length(REPORT_DATA_BYTES)),
        ("issued_at", big_endian_int),
        ("platform_key", Binary.fixed_length(32)),
        ("platform_certificate", Binary.fixed_length(64)),
        ("signature", Binary.fixed_length(64)),
    ]


@dataclass(frozen=True, slots=True)
class Quote:
    version: int
    measurement: bytes
    node_public_key: bytes
    report_data: bytes
    issued_at: int
    platform_key: bytes
    platform_certificate: bytes
    signature: bytes

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, field.name) for field in fields(self))

    def signed_body(self) -> bytes:
        """What the platform signs: everything but the signature, under a domain prefix."""
        return QUOTE_DOMAIN + rlp.encode(list(self._values()[:-1]))

    def encode(self) -> bytes:
        return rlp.encode(_QuoteFields(*self._values()))

    @classmethod
    def decode(cls, raw: bytes) -> Quote:
        if len(raw) > MAX_QUOTE_BYTES:
            raise AttestationError(f"a quote has at most {MAX_QUOTE_BYTES} bytes")
        try:
            fields = rlp.decode(raw, _QuoteFields, strict=True)
        except (rlp.DecodingError, rlp.DeserializationError) as exc:
            raise AttestationError(f"not a quote: {exc}") from None
        return cls(*fields)


def make_quote(
    platform: Platform, measurement: bytes, node_public_key: bytes, report_data: bytes, issued_at: int
) -> Quote:
    """A quote over the given claims, signed by `platform` (enclave side)."""
    if len(report_data) > REPORT_DATA_BYTES:
        raise ValueError(f"report data has at most {REPORT_DATA_BYTES} bytes")
    unsigned = Quote(
        QUOTE_VERSION,
        measurement,
        node_public_key,
        report_data.ljust(REPORT_DATA_BYTES, b"\0"),
        issued_at,
        platform.public_key,
        platform.certificate,
        b"",
    )
    return replace(unsigned, signature=platform.sign(unsigned.signed_body()))


def verify_quote(
    raw: bytes,
    *,
    roots: Collection[bytes],
    approved_measurements: Collection[bytes],
    now: int,
    max_age: int,
    report_data: bytes | None = None,
) -> Quote:
    """The decoded quote if it is to be trusted; AttestationError naming the first failure."""
    quote = Quote.decode(raw)
    if quote.version != QUOTE_VERSION:
        raise AttestationError(f"quote version {quote.version} is not supported (expected {QUOTE_VERSION})")
    if not any(certificate_is_valid(root, quote.platform_key, quote.platform_certificate) for root in roots):
        raise AttestationError("the platform key is not certified by a trusted attestation root")
    if not ed25519_verify(quote.platform_key, quote.signature, quote.signed_body()):
        raise AttestationError("the quote's signature does not verify with its platform key")
    if quote.measurement not in approved_measurements:
        raise AttestationError(
            f"measurement {quote.measurement.hex()} is not an approved enclave measurement"
        )
    if quote.issued_at > now + CLOCK_SKEW_SECONDS or now - quote.issued_at > max_age:
        raise AttestationError(
            f"the quote is not fresh: issued at {quote.issued_at}, now {now}, max age {max_age} s"
        )
    if report_data is not None and quote.report_data != report_data.ljust(REPORT_DATA_BYTES, b"\0"):
        raise AttestationError("the quote's report data is not the one expected")
    return quote


# -- measurement ------------------------------------------------------------------------


def measure_sources(sources: Iterable[tuple[str, bytes]], libraries: Iterable[tuple[str, str]]) -> bytes:
    """SHA-256 over (path, content) pairs sorted by path, then (library, version) pairs."""
    digest = hashlib.sha256(b"conclave/measurement/v1")
    for path, content in sorted(sources):
        encoded = path.encode()
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
        digest.update(len(content).to_bytes(8, "big") + content)
    for name, version in sorted(libraries):
        digest.update(f"{name}=={version}\n".encode())
    return digest.digest()


def measure_enclave(project_root: Path, packages: Iterable[str] = TRUSTED_PACKAGES) -> bytes:
    """The measurement of the trusted packages under `project_root` as they are on disk."""
    sources = [
        (path.relative_to(project_root).as_posix(), path.read_bytes())
        for package in packages
        for path in (project_root / package).rglob("*.py")
    ]
    libraries = [(name, metadata.version(name)) for name in EXECUTION_LIBRARIES]
    return measure_sources(sources, libraries)


# -- validators ---------------------------------------------------------------------------

VALIDATOR_QUOTE_MAX_AGE = 3600
"""How old a quote a validator joins with may be, in seconds of ledger time."""


def verify_validator_quote(
    raw: bytes, roots: frozenset[bytes], measurements: frozenset[bytes], now: int
) -> AttestedNode:
    """What a validator's quote proves (governance's `add_validator` asks, at ledger time)."""
    try:
        quote = verify_quote(
            raw, roots=roots, approved_measurements=measurements, now=now, max_age=VALIDATOR_QUOTE_MAX_AGE
        )
        return AttestedNode(address_of(quote.node_public_key), quote.measurement)
    except (AttestationError, ValueError) as refused:
        raise InvalidRequest(str(refused)) from None
