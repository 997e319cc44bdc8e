"""The enclave's key files: made once, sealed, and opened only by the same code."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from enclave.keystore import IDENTITY_FILE, LEDGER_SECRETS_FILE, KeystoreLocked, open_keystore

MEASUREMENT = b"\x01" * 32
OTHER_CODE = b"\x02" * 32


def test_keys_are_made_once_and_reopened(tmp_path: Path) -> None:
    first = open_keystore(tmp_path, MEASUREMENT)
    again = open_keystore(tmp_path, MEASUREMENT)
    assert again.identity.address == first.identity.address
    assert again.attestation_root == first.attestation_root
    assert again.ledger_secrets.export() == first.ledger_secrets.export()
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_nothing_secret_is_stored_in_clear(tmp_path: Path) -> None:
    keys = open_keystore(tmp_path, MEASUREMENT)
    stored = (tmp_path / IDENTITY_FILE).read_bytes() + (tmp_path / LEDGER_SECRETS_FILE).read_bytes()
    assert keys.identity.key.secret not in stored
    for secret in keys.ledger_secrets.export().values():
        assert secret not in stored


def test_other_enclave_code_cannot_open_the_keys(tmp_path: Path) -> None:
    open_keystore(tmp_path, MEASUREMENT)
    with pytest.raises(KeystoreLocked, match="sealed by other enclave code"):
        open_keystore(tmp_path, OTHER_CODE)


def test_a_dev_node_starts_over_when_the_code_changed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = open_keystore(tmp_path, MEASUREMENT)
    with caplog.at_level(logging.WARNING):
        after = open_keystore(tmp_path, OTHER_CODE, renew_foreign=True)
    assert after.identity.address != before.identity.address
    assert "new keys" in caplog.text
    assert open_keystore(tmp_path, OTHER_CODE).identity.address == after.identity.address
    (aside,) = tmp_path.glob("set-aside-*")
    for name in os.listdir(aside):  # the old keys are set aside, for the code that sealed them
        os.replace(aside / name, tmp_path / name)
    assert open_keystore(tmp_path, MEASUREMENT).identity.address == before.identity.address


def test_without_a_directory_the_keys_live_in_memory() -> None:
    assert (
        open_keystore(None, MEASUREMENT).identity.address != open_keystore(None, MEASUREMENT).identity.address
    )
