"""Sealing keys bind the platform and the measurement; ledger secrets rotate."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enclave.sealing import LedgerSecrets, UnsealError, derive_sealing_key, seal, unseal

SECRET = bytes(range(32))
MEASUREMENT = b"\x11" * 32


@given(st.binary(max_size=4096), st.binary(max_size=64))
def test_what_is_sealed_unseals(plaintext: bytes, purpose: bytes) -> None:
    key = derive_sealing_key(SECRET, MEASUREMENT)
    assert unseal(key, seal(key, plaintext, purpose), purpose) == plaintext


def test_another_measurement_cannot_unseal() -> None:
    blob = seal(derive_sealing_key(SECRET, MEASUREMENT), b"node key", b"identity")
    with pytest.raises(UnsealError):
        unseal(derive_sealing_key(SECRET, b"\x12" * 32), blob, b"identity")


def test_another_platform_cannot_unseal() -> None:
    blob = seal(derive_sealing_key(SECRET, MEASUREMENT), b"node key", b"identity")
    with pytest.raises(UnsealError):
        unseal(derive_sealing_key(os.urandom(32), MEASUREMENT), blob, b"identity")


def test_a_blob_unseals_only_for_its_purpose() -> None:
    key = derive_sealing_key(SECRET, MEASUREMENT)
    with pytest.raises(UnsealError):
        unseal(key, seal(key, b"payload", b"purpose A"), b"purpose B")


@given(st.data())
def test_any_changed_byte_fails(data: st.DataObject) -> None:
    key = derive_sealing_key(SECRET, MEASUREMENT)
    blob = bytearray(seal(key, b"confidential purchase order", b"tx"))
    position = data.draw(st.integers(0, len(blob) - 1))
    blob[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(UnsealError):
        unseal(key, bytes(blob), b"tx")


def test_sealing_twice_gives_different_blobs() -> None:
    key = derive_sealing_key(SECRET, MEASUREMENT)
    assert seal(key, b"same", b"p") != seal(key, b"same", b"p")


def test_a_short_platform_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        derive_sealing_key(b"short", MEASUREMENT)


def test_rotation_seals_with_the_new_secret_and_reads_the_old() -> None:
    first = LedgerSecrets.create()
    old_blob = first.seal(b"order 1", b"tx")
    rotated = first.rotated()
    new_blob = rotated.seal(b"order 2", b"tx")
    assert rotated.current_version == 1
    assert new_blob[:4] == (1).to_bytes(4, "big") and old_blob[:4] == (0).to_bytes(4, "big")
    assert rotated.unseal(old_blob, b"tx") == b"order 1"
    assert rotated.unseal(new_blob, b"tx") == b"order 2"
    with pytest.raises(UnsealError, match="version 1 is not known"):
        first.unseal(new_blob, b"tx")


def test_ledger_secrets_survive_export() -> None:
    secrets = LedgerSecrets.create().rotated()
    blob = secrets.seal(b"x", b"p")
    assert LedgerSecrets(secrets.export()).unseal(blob, b"p") == b"x"


@pytest.mark.parametrize("bad", [{}, {0: b"short"}, {-1: bytes(32)}])
def test_malformed_ledger_secrets_are_refused(bad: dict[int, bytes]) -> None:
    with pytest.raises(ValueError):
        LedgerSecrets(bad)
