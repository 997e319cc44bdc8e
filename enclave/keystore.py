"""What the enclave keeps on disk, in its own directory, and how it opens it.

    platform.bin             the emulated processor: attestation key, certificate, secret
    attestation-root.bin     the emulated vendor's root key (a dev network's own)
    node-identity.sealed     the node's secp256k1 key, sealed to platform + measurement
    ledger-secrets.sealed    the ledger secrets by version, sealed likewise

The first two stand for hardware: a real deployment has no such files. The sealed files
open only for the same enclave code on the same platform: after the code changes, a dev
node starts over with new keys (`renew_foreign=True`, with a warning); any other node
refuses to start until its keys are moved to the new code. Every file is written whole
(to a temporary name, synced, then renamed), so a crash never leaves half a key.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .identity import NodeIdentity
from .platform import AttestationRoot, Platform
from .sealing import LedgerSecrets, UnsealError, derive_sealing_key, seal, unseal

log = logging.getLogger(__name__)

PLATFORM_FILE = "platform.bin"
ROOT_FILE = "attestation-root.bin"
IDENTITY_FILE = "node-identity.sealed"
LEDGER_SECRETS_FILE = "ledger-secrets.sealed"
LEDGER_SECRETS_PURPOSE = b"conclave/ledger-secrets/v1"


@dataclass(frozen=True)
class Keystore:
    platform: Platform
    attestation_root: bytes
    identity: NodeIdentity
    ledger_secrets: LedgerSecrets


def write_atomically(path: Path, content: bytes) -> None:
    """Replace `path` with `content` whole (written, synced, then renamed), readable by its owner only."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(temporary, 0o600)
    temporary.replace(path)


class KeystoreLocked(Exception):
    """The sealed keys belong to other enclave code (another measurement) or platform."""


def open_keystore(directory: Path | None, measurement: bytes, *, renew_foreign: bool = False) -> Keystore:
    """The enclave's keys from `directory`, made on first use; all in memory if None."""
    if directory is None:
        root = AttestationRoot.create()
        return Keystore(root.new_platform(), root.public_key, NodeIdentity.create(), LedgerSecrets.create())
    directory.mkdir(parents=True, exist_ok=True)
    root_path, platform_path = directory / ROOT_FILE, directory / PLATFORM_FILE
    if not platform_path.exists():
        root = (
            AttestationRoot.from_bytes(root_path.read_bytes())
            if root_path.exists()
            else AttestationRoot.create()
        )
        write_atomically(root_path, root.to_bytes())
        write_atomically(platform_path, root.new_platform().to_bytes())
    root = AttestationRoot.from_bytes(root_path.read_bytes())
    platform = Platform.from_bytes(platform_path.read_bytes())
    sealing_key = derive_sealing_key(platform.secret, measurement)
    try:
        identity, secrets = _open_sealed(directory, sealing_key)
    except UnsealError:
        if not renew_foreign:
            raise KeystoreLocked(
                f"the keys in {directory} were sealed by other enclave code than this "
                f"(measurement {measurement.hex()}): run the code that sealed them"
            ) from None
        # Set aside, not deleted: the code that sealed them can still open its ledger.
        aside = directory / time.strftime("set-aside-%Y%m%dT%H%M%SZ", time.gmtime())
        log.warning(
            "the enclave code changed: this dev node starts with new keys (the old ones are in %s)", aside
        )
        aside.mkdir(exist_ok=True)
        for name in (IDENTITY_FILE, LEDGER_SECRETS_FILE):
            if (directory / name).exists():
                (directory / name).replace(aside / name)
        identity, secrets = _open_sealed(directory, sealing_key)
    return Keystore(platform, root.public_key, identity, secrets)


def with_ledger_secrets(
    keystore: Keystore, secrets: LedgerSecrets, directory: Path | None, measurement: bytes
) -> Keystore:
    """`keystore` holding `secrets`, which are sealed into `directory` first (if any)."""
    if directory is not None:
        sealing_key = derive_sealing_key(keystore.platform.secret, measurement)
        write_atomically(
            directory / LEDGER_SECRETS_FILE,
            seal(sealing_key, secrets.to_bytes(), LEDGER_SECRETS_PURPOSE),
        )
    return replace(keystore, ledger_secrets=secrets)


def _open_sealed(directory: Path, sealing_key: bytes) -> tuple[NodeIdentity, LedgerSecrets]:
    identity_path = directory / IDENTITY_FILE
    if identity_path.exists():
        identity = NodeIdentity.unsealed(sealing_key, identity_path.read_bytes())
    else:
        identity = NodeIdentity.create()
        write_atomically(identity_path, identity.sealed(sealing_key))

    secrets_path = directory / LEDGER_SECRETS_FILE
    if secrets_path.exists():
        secrets = LedgerSecrets.from_bytes(
            unseal(sealing_key, secrets_path.read_bytes(), LEDGER_SECRETS_PURPOSE)
        )
    else:
        secrets = LedgerSecrets.create()
        write_atomically(secrets_path, seal(sealing_key, secrets.to_bytes(), LEDGER_SECRETS_PURPOSE))
    return identity, secrets
