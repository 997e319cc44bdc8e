"""Quotes: a chain from the attestation root to the claims, and nothing else verifies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.attestation import (
    TRUSTED_PACKAGES,
    AttestationError,
    Quote,
    make_quote,
    measure_enclave,
    verify_quote,
)
from enclave.identity import NodeIdentity
from enclave.platform import AttestationRoot, Platform

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000
ROOT = AttestationRoot.create()
PLATFORM = ROOT.new_platform()
MEASUREMENT = measure_enclave(REPO_ROOT)
NODE = NodeIdentity.create()


def _quote(report_data: bytes = b"nonce-1", issued_at: int = NOW, platform: Platform = PLATFORM) -> bytes:
    return make_quote(platform, MEASUREMENT, NODE.public_key, report_data, issued_at).encode()


def _verify(raw: bytes, **overrides: object) -> Quote:
    options: dict[str, object] = {
        "roots": [ROOT.public_key],
        "approved_measurements": {MEASUREMENT},
        "now": NOW,
        "max_age": 600,
    }
    options.update(overrides)
    return verify_quote(raw, **options)  # type: ignore[arg-type]


def test_a_genuine_quote_verifies_and_carries_its_claims() -> None:
    quote = _verify(_quote(), report_data=b"nonce-1")
    assert quote.measurement == MEASUREMENT
    assert quote.node_public_key == NODE.public_key
    assert quote.report_data.rstrip(b"\0") == b"nonce-1"


@settings(max_examples=300)
@given(st.data())
def test_any_changed_byte_fails_verification(data: st.DataObject) -> None:
    raw = bytearray(_quote())
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(AttestationError):
        _verify(bytes(raw), report_data=b"nonce-1")


def test_modified_enclave_code_fails_verification(tmp_path: Path) -> None:
    for package in TRUSTED_PACKAGES:
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    assert measure_enclave(tmp_path) == MEASUREMENT
    target = tmp_path / "evm_runtime" / "transactions.py"
    target.write_text(target.read_text() + "\nSKIP_SIGNATURE_CHECKS = True\n")
    tampered = measure_enclave(tmp_path)
    assert tampered != MEASUREMENT
    raw = make_quote(PLATFORM, tampered, NODE.public_key, b"", NOW).encode()
    with pytest.raises(AttestationError, match="not an approved enclave measurement"):
        _verify(raw)


def test_a_platform_not_certified_by_a_trusted_root_fails() -> None:
    rogue = AttestationRoot.create().new_platform()
    with pytest.raises(AttestationError, match="not certified"):
        _verify(_quote(platform=rogue))


def test_a_self_certified_platform_fails() -> None:
    genuine = PLATFORM
    forged = Platform(key=genuine.key, certificate=bytes(64), secret=genuine.secret)
    with pytest.raises(AttestationError, match="not certified"):
        _verify(_quote(platform=forged))


@pytest.mark.parametrize("issued_at", [NOW - 601, NOW + 60])
def test_a_quote_must_be_fresh(issued_at: int) -> None:
    with pytest.raises(AttestationError, match="not fresh"):
        _verify(_quote(issued_at=issued_at))


def test_the_expected_report_data_is_checked() -> None:
    with pytest.raises(AttestationError, match="report data"):
        _verify(_quote(b"nonce-1"), report_data=b"nonce-2")


@pytest.mark.parametrize("raw", [b"", b"\xc0", b"\x00" * 2000, b"not rlp at all"])
def test_garbage_is_not_a_quote(raw: bytes) -> None:
    with pytest.raises(AttestationError):
        _verify(raw)


def test_platform_and_root_records_round_trip() -> None:
    assert Platform.from_bytes(PLATFORM.to_bytes()).to_bytes() == PLATFORM.to_bytes()
    assert AttestationRoot.from_bytes(ROOT.to_bytes()).public_key == ROOT.public_key
    with pytest.raises(ValueError, match="128 bytes"):
        Platform.from_bytes(b"\0" * 10)


def test_report_data_is_bounded() -> None:
    with pytest.raises(ValueError, match="at most 64 bytes"):
        make_quote(PLATFORM, MEASUREMENT, NODE.public_key, b"x" * 65, NOW)
