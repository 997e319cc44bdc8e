"""Crash safety: SIGKILL a node under steady load at seeded random moments, many times.

After every restart, every transaction whose receipt a client had received is there with
the same receipt, the blocks link without a gap, and the node goes on taking
transactions. At the end, `conclave ledger verify` replays the whole chain offline: every
state root matches a clean replay. Runs on SQLite and PostgreSQL, 10 node kills each (20 a
run), and 5 kills of the enclave process alone each, which the node must survive without
restarting; `--long` makes them 100 each. The seed is printed; CONCLAVE_CRASH_SEED
replays one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.e2e.chain_helpers import conclave_command, fresh_account
from tests.e2e.test_persistence import assert_chain_links
from tests.evm_runtime.chainkit import calldata
from tests.support.artifacts import load_artifact
from tests.support.devnode import DevNode, start_dev_node

KILLS = 10
ENCLAVE_KILLS = 5
LONG_KILLS = 100
SENDERS = 4
BATCH = 8
GWEI = 10**9


def _rpc(client: httpx.Client, url: str, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    batch = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    answers = client.post(url, json=batch).json()
    return sorted(answers, key=lambda answer: answer["id"])


@dataclass
class Load:
    """Senders that keep transactions flowing and remember every receipt they saw."""

    accounts: list[LocalAccount]
    chain_id: int
    probe: str | None = None
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _signed(self, account: LocalAccount, nonce: int, step: int) -> str:
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": nonce,
            "maxFeePerGas": 50 * GWEI,
            "maxPriorityFeePerGas": GWEI,
        }
        if self.probe is None or step % 3:
            tx.update(to=fresh_account().address, value=1_000 + step, gas=21_000)
        else:
            tx.update(to=self.probe, data=calldata("emitMany(uint256)", 1 + step % 4), gas=200_000)
        return account.sign_transaction(tx).raw_transaction.to_0x_hex()

    def run(self, url: str, stop: threading.Event) -> None:
        """Send batches and poll receipts until `stop` is set or the node is gone."""
        client = httpx.Client(timeout=5)
        try:
            nonces = [
                int(answer["result"], 16)
                for answer in _rpc(
                    client, url, [("eth_getTransactionCount", [a.address, "pending"]) for a in self.accounts]
                )
            ]
            sent: list[str] = []
            step = 0
            while not stop.is_set():
                raws = []
                for index, account in enumerate(self.accounts):
                    for _ in range(BATCH // SENDERS):
                        raws.append(self._signed(account, nonces[index], step))
                        nonces[index] += 1
                        step += 1
                answers = _rpc(client, url, [("eth_sendRawTransaction", [raw]) for raw in raws])
                sent += [answer["result"] for answer in answers if "result" in answer]
                waiting = [h for h in sent if h not in self.seen][:200]
                if waiting:
                    receipts = _rpc(client, url, [("eth_getTransactionReceipt", [h]) for h in waiting])
                    for tx_hash, answer in zip(waiting, receipts, strict=True):
                        if answer.get("result"):
                            self.seen[tx_hash] = answer["result"]
        except (httpx.HTTPError, ValueError, KeyError):
            return  # the node was killed under us
        finally:
            client.close()


def _check_seen_receipts(node: DevNode, seen: dict[str, dict[str, Any]]) -> None:
    hashes = list(seen)
    client = httpx.Client(timeout=30)
    try:
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            answers = _rpc(client, node.rpc_url, [("eth_getTransactionReceipt", [h]) for h in chunk])
            for tx_hash, answer in zip(chunk, answers, strict=True):
                assert answer.get("result") == seen[tx_hash], f"receipt of {tx_hash} changed or lost"
    finally:
        client.close()


def _deploy_probe(node: DevNode, account: LocalAccount) -> str:
    bytecode = load_artifact("Probe")["bytecode"]
    nonce = int(node.result("eth_getTransactionCount", [account.address, "pending"]), 16)
    tx = {
        "chainId": node.chain_id,
        "nonce": nonce,
        "data": bytecode,
        "gas": 3_000_000,
        "maxFeePerGas": 50 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    tx_hash = node.result(
        "eth_sendRawTransaction", [account.sign_transaction(tx).raw_transaction.to_0x_hex()]
    )
    deadline = time.monotonic() + 30
    while (receipt := node.result("eth_getTransactionReceipt", [tx_hash])) is None:
        assert time.monotonic() < deadline, "the probe contract was not deployed"
        time.sleep(0.02)
    return str(receipt["contractAddress"])


def _seed(request: pytest.FixtureRequest, kills: int, long_kills: int) -> tuple[random.Random, int]:
    seed = int(os.environ.get("CONCLAVE_CRASH_SEED", random.randrange(2**32)))
    count = long_kills if request.config.getoption("--long") else kills
    print(f"crash harness: seed {seed}, {count} kills")
    return random.Random(seed), count


def _verify_offline(database_url: str, data_dir: Path, seen: int) -> None:
    verified = subprocess.run(
        conclave_command(
            "ledger", "verify", "--database-url", database_url, "--data-dir", str(data_dir), "--json"
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(verified.stdout)
    assert verified.returncode == 0 and report["ok"], report["discrepancies"][:5]
    assert report["transactions"] >= seen
    print(f"crash harness: {seen} receipts seen, {report['blocks']} blocks verified by replay")


def _start_load(node: DevNode, load: Load) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    sender = threading.Thread(target=load.run, args=(node.rpc_url, stop))
    sender.start()
    return sender, stop


def _stop_load(sender: threading.Thread, stop: threading.Event) -> None:
    stop.set()
    sender.join(timeout=30)
    assert not sender.is_alive(), "the load thread did not stop"


def _start(database_url: str, data_dir: Path) -> DevNode:
    """A dev node on `database_url`, its enclave's keys (which seal the state) in `data_dir`."""
    return start_dev_node("--database-url", database_url, "--data-dir", str(data_dir))


def _loaded_node(database_url: str, data_dir: Path) -> tuple[DevNode, Load]:
    node = _start(database_url, data_dir)
    load = Load([Account.from_key(a.key) for a in node.accounts[:SENDERS]], node.chain_id)
    load.probe = _deploy_probe(node, Account.from_key(node.accounts[SENDERS].key))
    return node, load


def test_node_kills_under_load_lose_nothing_a_client_saw(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    rng, kills = _seed(request, KILLS, LONG_KILLS)
    node, load = _loaded_node(database_url, tmp_path)
    for round_number in range(kills):
        sender, stop = _start_load(node, load)
        time.sleep(rng.uniform(0.1, 1.2))
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=10)
        _stop_load(sender, stop)

        node = _start(database_url, tmp_path)
        _check_seen_receipts(node, load.seen)
        if round_number in (0, kills - 1):
            assert assert_chain_links(node) >= 1
    assert len(load.seen) > kills, f"only {len(load.seen)} receipts were seen over {kills} rounds"
    assert node.stop() == 0
    _verify_offline(database_url, tmp_path, len(load.seen))


def test_enclave_kills_under_load_lose_nothing_and_the_node_goes_on(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    rng, kills = _seed(request, ENCLAVE_KILLS, LONG_KILLS)
    node, load = _loaded_node(database_url, tmp_path)
    status_url = node.rpc_url.rstrip("/") + "/node/status"
    sender, stop = _start_load(node, load)
    try:
        for round_number in range(kills):
            time.sleep(rng.uniform(0.1, 1.0))
            enclave = httpx.get(status_url, timeout=10).json()["enclave"]
            os.kill(enclave["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 20
            while httpx.get(status_url, timeout=10).json()["enclave"]["restarts"] <= round_number:
                assert time.monotonic() < deadline, "the node did not restart its enclave"
                time.sleep(0.05)
    finally:
        _stop_load(sender, stop)
    _check_seen_receipts(node, load.seen)
    assert_chain_links(node)
    before = len(load.seen)
    sender, stop = _start_load(node, load)
    time.sleep(1.0)
    _stop_load(sender, stop)
    assert len(load.seen) > before, "no transaction went through after the enclave kills"
    assert node.stop() == 0
    _verify_offline(database_url, tmp_path, len(load.seen))
