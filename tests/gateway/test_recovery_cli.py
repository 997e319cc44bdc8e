"""`conclave recovery submit-share` attests the recovering node before it sends a share
(docs/recovery.md): its quote, over a fresh nonce, must verify against the network's roots
and approved measurements and name the very key the share is encrypted to.

A small network whose two members hold recovery keys from block 0 (`recoveryKey` in the
genesis document) makes a ledger; a new enclave on a copy of it is the recovering node,
served over HTTP (`gateway.recovery_mode.recovery_app`) in a thread, or, once, as a real
`conclave node --recover` process."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_keys import keys

from enclave.attestation import AttestationError, make_quote, measure_enclave
from enclave.identity import NodeIdentity
from enclave.interface import RecoveryStatus
from enclave.keystore import ROOT_FILE
from enclave.local import InProcessEnclave
from enclave.platform import AttestationRoot
from enclave.recovery import RecoverySet
from evm_runtime.chain import ChainParams
from gateway.cli import main
from gateway.cli_keys import CommandError
from gateway.genesis_document import read_genesis
from gateway.node import Node, NodeConfig
from gateway.recovery_cli import (
    AttestationTrust,
    add_attestation_arguments,
    attestation_trust,
    verify_recovering_node,
)
from gateway.recovery_mode import RecoveringNode, recovery_app
from ledger.database import make_engine
from ledger.recovery_sets import latest_recovery_set
from ledger.store import LedgerStore
from tests.support.local_network import REPOSITORY, start_node, stop_node

CHAIN_ID = 4321
ALICE, BOB, MALLORY = (bytes([n]) * 32 for n in (0x11, 0x22, 0x33))
MEASUREMENT = bytes([0x5E]) * 32
"""An approved measurement, for quotes made here (the nodes' own is their code's)."""
NOW = 1_800_000_000


def _hex(key: bytes) -> str:
    return "0x" + key.hex()


def _member(key: bytes, name: str) -> dict[str, str]:
    public = keys.PrivateKey(key).public_key
    return {
        "address": public.to_checksum_address(),
        "name": name,
        "recoveryKey": _hex(public.to_compressed_bytes()),
    }


@dataclass
class Ledger:
    """A ledger whose enclave is lost: its genesis document, database file and vendor root."""

    folder: Path
    genesis: Path
    root: AttestationRoot

    @property
    def database(self) -> Path:
        return self.folder / "ledger.sqlite"


def make_ledger(folder: Path) -> Ledger:
    root = AttestationRoot.create()
    document = {
        "chainId": CHAIN_ID,
        "timestamp": 1_767_225_600,
        "consortium": {
            "members": [_member(ALICE, "Alice"), _member(BOB, "Bob")],
            "attestationRoots": [_hex(root.public_key)],
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    genesis = folder / "genesis.json"
    genesis.write_text(json.dumps(document))
    spec = read_genesis(document)
    lost = folder / "lost-enclave"
    lost.mkdir()
    (lost / ROOT_FILE).write_bytes(root.to_bytes())
    node = Node(
        NodeConfig(
            database_url=f"sqlite:///{folder / 'ledger.sqlite'}",
            chain_id=CHAIN_ID,
            genesis_timestamp=spec.timestamp,
            genesis_governance=spec.governance,
            enclave_dir=lost,
        )
    )
    node.store.close()
    node.engine.dispose()
    shutil.rmtree(lost)  # every node lost: only the ledger and the genesis document survive
    return Ledger(folder, genesis, root)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return make_ledger(tmp_path_factory.mktemp("recovery-cli") / "network")


class LyingEnclave:
    """A host that names its own key in `/recovery/status` (and relays the real quotes)."""

    def __init__(self, enclave: InProcessEnclave, key: bytes) -> None:
        self._enclave, self._key = enclave, key

    def recovery_status(self) -> RecoveryStatus:
        return replace(self._enclave.recovery_status(), node_public_key=self._key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._enclave, name)


@dataclass
class Served:
    url: str
    enclave: InProcessEnclave


@pytest.fixture
def recovering(ledger: Ledger, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Serve a recovering node on a copy of `ledger` (a new enclave under the vendor root)."""
    started: list[tuple[uvicorn.Server, threading.Thread, LedgerStore, Any]] = []

    def start(*, root: AttestationRoot | None = None, lie_with: bytes | None = None) -> Served:
        folder = tmp_path / f"node{len(started)}"
        (folder / "enclave").mkdir(parents=True)
        shutil.copy2(ledger.database, folder / "ledger.sqlite")
        (folder / "enclave" / ROOT_FILE).write_bytes((root or ledger.root).to_bytes())
        engine = make_engine(f"sqlite:///{folder / 'ledger.sqlite'}")
        store = LedgerStore(engine)
        enclave = InProcessEnclave(store, ChainParams(chain_id=CHAIN_ID), keys_dir=folder / "enclave")
        assert enclave.recovery_status().sealed
        served: Any = enclave if lie_with is None else LyingEnclave(enclave, lie_with)
        app = recovery_app(RecoveringNode(ChainParams(chain_id=CHAIN_ID), store, served))
        listener = socket.create_server(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        started.append((server, thread, store, engine))
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the recovery server did not start"
            time.sleep(0.02)
        return Served(f"http://127.0.0.1:{listener.getsockname()[1]}", enclave)

    yield start
    for server, thread, store, engine in started:
        server.should_exit = True
        thread.join(10)
        store.close()
        engine.dispose()


def submit(
    capsys: pytest.CaptureFixture[str], url: str, key: bytes, *flags: str
) -> tuple[int, dict[str, Any] | None, str]:
    """`conclave recovery submit-share --json` in this process: status, answer, stderr."""
    status = main(["recovery", "submit-share", "--rpc", url, "--key", _hex(key), "--json", *flags])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip() else None), err


# -- the verification ---------------------------------------------------------------------

ROOT = AttestationRoot.create()
PLATFORM = ROOT.new_platform()
NODE = NodeIdentity.create()
NONCE = os.urandom(32)
TRUST = AttestationTrust(frozenset({ROOT.public_key}), frozenset({MEASUREMENT}))


def _verify(raw: bytes, *, nonce: bytes = NONCE, node_public_key: bytes = NODE.public_key) -> Any:
    return verify_recovering_node(
        raw, nonce=nonce, node_public_key=node_public_key, trust=TRUST, now=NOW, max_age=60
    )


def _quote(*, measurement: bytes = MEASUREMENT, platform: Any = PLATFORM, issued_at: int = NOW) -> bytes:
    return make_quote(platform, measurement, NODE.public_key, NONCE, issued_at).encode()


def test_a_genuine_quote_of_the_key_shares_go_to_verifies() -> None:
    quote = _verify(_quote())
    assert quote.node_public_key == NODE.public_key and quote.measurement == MEASUREMENT


def test_a_quote_for_another_key_than_the_one_named_is_refused() -> None:
    with pytest.raises(AttestationError, match="it is not that enclave's key"):
        _verify(_quote(), node_public_key=NodeIdentity.create().public_key)


def test_a_tampered_quote_is_refused() -> None:
    raw = bytearray(_quote())
    raw[len(raw) // 2] ^= 0x01
    with pytest.raises(AttestationError):
        _verify(bytes(raw))
    forged = _quote(platform=AttestationRoot.create().new_platform())
    with pytest.raises(AttestationError, match="not certified by a trusted attestation root"):
        _verify(forged)


def test_an_unapproved_measurement_is_refused() -> None:
    with pytest.raises(AttestationError, match="not an approved enclave measurement"):
        _verify(_quote(measurement=bytes(32)))


def test_a_quote_over_another_nonce_or_a_stale_one_is_refused() -> None:
    with pytest.raises(AttestationError, match="report data is not the one expected"):
        _verify(_quote(), nonce=os.urandom(32))
    with pytest.raises(AttestationError, match="not fresh"):
        _verify(_quote(issued_at=NOW - 61))


# -- the command ----------------------------------------------------------------------------


def test_submit_share_asks_for_what_to_trust_and_sends_nothing_without_it(
    recovering: Callable[..., Served], capsys: pytest.CaptureFixture[str]
) -> None:
    node = recovering()
    status, answer, err = submit(capsys, node.url, ALICE)
    assert status == 1 and answer is None
    assert "pass --genesis GENESIS.json" in err and "--attestation-root ROOT and --measurement" in err
    status, _, err = submit(capsys, node.url, ALICE, "--attestation-root", _hex(ROOT.public_key))
    assert status == 1 and "no approved enclave measurement: pass --measurement" in err
    status, _, err = submit(capsys, node.url, ALICE, "--no-attest", "--measurement", _hex(MEASUREMENT))
    assert status == 1 and "--no-attest skips the attestation" in err
    assert node.enclave.recovery_status().submitted == ()


def test_submit_share_refuses_a_node_that_fails_attestation(
    ledger: Ledger, recovering: Callable[..., Served], capsys: pytest.CaptureFixture[str]
) -> None:
    # A platform under a root the genesis document does not trust.
    rogue = recovering(root=AttestationRoot.create())
    status, _, err = submit(capsys, rogue.url, ALICE, "--genesis", str(ledger.genesis))
    assert status == 1 and "failed attestation, your share was not sent" in err
    assert "not certified by a trusted attestation root" in err
    # Approved code other than what this node runs.
    node = recovering()
    flags = ["--attestation-root", _hex(ledger.root.public_key), "--measurement", _hex(bytes(32))]
    status, _, err = submit(capsys, node.url, ALICE, *flags)
    assert status == 1 and "not an approved enclave measurement" in err
    # A host naming its own key, while relaying the genuine enclave's quotes.
    host_key = NodeIdentity.create().public_key
    lying = recovering(lie_with=host_key)
    status, _, err = submit(capsys, lying.url, ALICE, "--genesis", str(ledger.genesis))
    assert status == 1 and "it is not that enclave's key" in err and host_key.hex() in err
    for refused in (rogue, node, lying):
        assert refused.enclave.recovery_status().submitted == ()


def test_submit_share_attests_then_submits_and_no_attest_warns(
    ledger: Ledger, recovering: Callable[..., Served], capsys: pytest.CaptureFixture[str]
) -> None:
    node = recovering()
    root_file = ledger.folder / "vendor-root.bin"
    root_file.write_bytes(ledger.root.to_bytes())  # the emulated vendor's root key file
    measurement = _hex(node.enclave.measurement)
    flags = ["--attestation-root", str(root_file), "--measurement", measurement]
    status, answer, err = submit(capsys, node.url, ALICE, *flags)
    assert status == 0, err
    assert answer is not None and answer["sealed"] and len(answer["submitted"]) == 1
    assert answer["attestation"]["measurement"] == measurement
    assert answer["attestation"]["nodePublicKey"] == _hex(node.enclave.node_keys().public_key)
    status, answer, err = submit(capsys, node.url, BOB, "--no-attest")
    assert "WARNING: --no-attest: the recovering node is NOT attested" in err
    assert status == 0 and answer is not None and not answer["sealed"] and answer["attestation"] is None


def test_a_real_recovering_node_is_attested_with_the_genesis_document(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`conclave node --recover` as a process (its enclave in it), under the vendor's root."""
    folder = tmp_path / "recovered"
    (folder / "enclave").mkdir(parents=True)
    shutil.copy2(ledger.database, folder / "ledger.sqlite")
    shutil.copy2(ledger.genesis, folder / "genesis.json")
    (folder / "enclave" / ROOT_FILE).write_bytes(ledger.root.to_bytes())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (folder / "node.toml").write_text(
        f'data_dir = "."\ngenesis = "genesis.json"\n[rpc]\nport = {port}\n[enclave]\nmode = "in-process"\n'
    )
    url = f"http://127.0.0.1:{port}"
    with open(folder / "node.log", "w") as log:
        node = start_node(folder / "node.toml", "--recover", log=log)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert node.poll() is None, (folder / "node.log").read_text()
                try:
                    if httpx.get(f"{url}/recovery/status").json()["sealed"]:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the node did not start in recovery mode"
                time.sleep(0.2)
            quoted = httpx.get(f"{url}/node/quote", params={"reportData": "0x" + "ab" * 64}).json()
            assert quoted["reportData"] == "0x" + "ab" * 64 and len(quoted["measurement"]) == 66
            assert httpx.get(f"{url}/node/quote", params={"reportData": "0x" + "ab" * 65}).status_code == 422

            status, answer, err = submit(capsys, url, ALICE, "--genesis", str(folder / "genesis.json"))
            assert status == 0, err
            assert answer is not None and answer["sealed"] and answer["attestation"] is not None
            status, answer, err = submit(capsys, url, BOB, "--genesis", str(folder / "genesis.json"))
            assert status == 0, err
            assert answer is not None and not answer["sealed"]
        finally:
            stop_node(node)


def test_members_with_recovery_keys_in_the_genesis_document_hold_shares_from_block_0(ledger: Ledger) -> None:
    engine = make_engine(f"sqlite:///{ledger.database}")
    try:
        stored = latest_recovery_set(engine)
    finally:
        engine.dispose()
    assert stored is not None and stored[0] == 0
    recovery_set = RecoverySet.from_bytes(stored[1])
    assert set(recovery_set.shares) == {
        keys.PrivateKey(k).public_key.to_canonical_address() for k in (ALICE, BOB)
    }
    assert recovery_set.threshold == 2


def test_register_key_show_prints_the_key_for_a_genesis_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recovery", "register-key", "--show", "--key", _hex(ALICE), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["publicKey"] == _member(ALICE, "Alice")["recoveryKey"]


def _trust(tmp_path: Path, consortium: dict[str, Any], *flags: str) -> AttestationTrust | None:
    genesis = tmp_path / "genesis.json"
    members = [{"address": "0x" + "a1" * 20}]
    genesis.write_text(json.dumps({"timestamp": 1, "consortium": {"members": members, **consortium}}))
    parser = argparse.ArgumentParser()
    add_attestation_arguments(parser)
    return attestation_trust(parser.parse_args(["--genesis", str(genesis), *flags]))


def test_the_genesis_document_gives_the_roots_and_the_measurements_a_node_reading_it_approves(
    tmp_path: Path,
) -> None:
    root, listed, pinned = _hex(ROOT.public_key), bytes([7]) * 32, bytes([8]) * 32
    validator = {"address": "0x" + "b2" * 20, "endpoint": "127.0.0.1:30300"}
    implicit = _trust(tmp_path, {"attestationRoots": [root], "validators": [validator]})
    this_code = measure_enclave(REPOSITORY)  # this installation's code, as the command measures it
    assert implicit == AttestationTrust(frozenset({ROOT.public_key}), frozenset({this_code}))
    explicit = _trust(
        tmp_path,
        {
            "attestationRoots": [root],
            "measurements": [_hex(listed)],
            "validators": [{**validator, "measurement": _hex(pinned)}],
        },
        "--measurement",
        _hex(bytes(32)),
    )
    assert explicit is not None and explicit.measurements == {listed, pinned, bytes(32)}
    with pytest.raises(
        CommandError, match="names no attestationRoots: pass the network's with --attestation-root"
    ):
        _trust(tmp_path, {})
    assert _trust(tmp_path, {}, "--attestation-root", root) == implicit
    parser = argparse.ArgumentParser()
    add_attestation_arguments(parser)
    with pytest.raises(CommandError, match="not readable"):
        attestation_trust(parser.parse_args(["--genesis", str(tmp_path / "missing.json")]))
