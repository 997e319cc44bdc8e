"""`conclave net`: a local network's files, its refusals, and four real validators agreeing."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.dev_accounts import DEFAULT_BALANCE_ETH, WEI_PER_ETH, derive_accounts
from gateway.genesis_document import read_genesis
from gateway.net_cli import P2P_OFFSET, Network, prepare_network
from gateway.node_cli import read_node_file
from tests.support.devnode import REPO_ROOT

UP_TIMEOUT = 60


def free_base_port(validators: int) -> int:
    """A base port whose JSON-RPC and transport ports (`gateway.net_cli.ports_of`) are free."""
    for _ in range(200):
        base = random.randrange(20_000, 60_000)
        ports = [base + i for i in range(validators)] + [base + P2P_OFFSET + i for i in range(validators)]
        try:
            for port in ports:
                socket.create_server(("127.0.0.1", port)).close()
        except OSError:
            continue
        return base
    raise RuntimeError("no free range of loopback ports")


def conclave(*argv: str, timeout: float = UP_TIMEOUT + 30) -> subprocess.CompletedProcess[str]:
    """Run the `conclave` command line in its own process, as a user does."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


# -- the files of a network ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """A network of three validators, made but never started."""
    return prepare_network(tmp_path_factory.mktemp("net") / "net", 3, 31_000, 4242, "in-process")


def test_every_node_is_a_validator_of_one_genesis(prepared: Network) -> None:
    spec = read_genesis(json.loads((prepared.folder / "genesis.json").read_text()))
    assert spec.chain_id == 4242 and spec.timestamp is not None
    named = {"0x" + address.hex(): v.endpoint for address, v in spec.governance.validators.items()}
    assert named == {n.address.lower(): f"127.0.0.1:{31_100 + n.index}" for n in prepared.nodes}
    assert all(not v.measurement for v in spec.governance.validators.values())
    root = (prepared.folder / "attestation-root.bin").read_bytes()
    for node in prepared.nodes:
        assert (node.folder / "enclave" / "attestation-root.bin").read_bytes() == root
    assert len(spec.governance.attestation_roots) == 1


def test_the_dev_accounts_are_funded_and_the_first_one_governs(prepared: Network) -> None:
    spec = read_genesis(json.loads((prepared.folder / "genesis.json").read_text()))
    accounts = derive_accounts()
    assert list(spec.governance.members) == [accounts[0].address_bytes]
    assert {a.address_bytes for a in accounts} <= set(spec.alloc)
    assert spec.alloc[accounts[9].address_bytes].balance == DEFAULT_BALANCE_ETH * WEI_PER_ETH


def test_each_node_has_a_config_that_joins_node_0(prepared: Network) -> None:
    for node in prepared.nodes:
        file = read_node_file(node.config_path)
        assert (file.data_dir, file.genesis) == (node.folder, prepared.folder / "genesis.json")
        assert (file.rpc.port, file.p2p) == (31_000 + node.index, ("127.0.0.1", 31_100 + node.index))
        assert file.join == (None if node.index == 0 else "http://127.0.0.1:31000")
        assert file.enclave_mode == "in-process"
    assert Network.load(prepared.folder) == prepared


def test_down_and_status_of_a_stopped_network(prepared: Network, capsys: pytest.CaptureFixture[str]) -> None:
    stale = prepared.nodes[1].pid_path
    stale.write_text("999999999\n")  # no such process
    assert main(["net", "down", "--dir", str(prepared.folder)]) == 0
    assert "not running: node0, node1, node2" in capsys.readouterr().out
    assert not stale.exists()
    assert main(["net", "status", "--dir", str(prepared.folder), "--json"]) == 1
    status = json.loads(capsys.readouterr().out)
    assert [(n["running"], n["head"]) for n in status["nodes"]] == [(False, None)] * 3


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--validators", "4"], "has --validators 3, not 4: leave --validators out"),
        (["--base-port", "9000"], "has --base-port 31000, not 9000"),
    ],
)
def test_up_keeps_a_stopped_network_as_it_was_made(
    prepared: Network, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert main(["net", "up", "--dir", str(prepared.folder), *argv]) == 1
    assert words in capsys.readouterr().err


def test_commands_without_a_network_say_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("down", "status"):
        assert main(["net", command, "--dir", str(tmp_path)]) == 1
        assert f"no network in {tmp_path}: make one with `conclave net up --dir {tmp_path}`" in (
            capsys.readouterr().err
        )
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["net", "up", "--dir", str(tmp_path)]) == 1
    assert "is not empty and holds no network" in capsys.readouterr().err


def test_up_refuses_taken_ports_before_making_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = free_base_port(2)
    with socket.create_server(("127.0.0.1", base + P2P_OFFSET + 1)):
        assert (
            main(["net", "up", "--dir", str(tmp_path / "net"), "--validators", "2", "--base-port", str(base)])
            == 1
        )
    assert f"127.0.0.1:{base + P2P_OFFSET + 1} (node1) is not free" in capsys.readouterr().err
    assert not (tmp_path / "net").exists()


# -- four validators ------------------------------------------------------------------------------


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """`conclave net up` of four validators; `conclave net down` at the end, whatever happens."""
    folder = tmp_path / "net"
    base = free_base_port(4)
    argv = ["net", "up", "--validators", "4", "--base-port", str(base), "--dir", str(folder), "--json"]
    try:
        started = conclave(*argv, "--timeout", str(UP_TIMEOUT))
        assert started.returncode == 0, started.stderr
        yield folder, json.loads(started.stdout)
    finally:
        conclave("net", "down", "--dir", str(folder))


def test_four_validators_agree_on_a_block(network: tuple[Path, dict[str, Any]]) -> None:
    from web3 import Web3

    folder, up = network
    nodes = up["nodes"]
    assert [n["index"] for n in nodes] == [0, 1, 2, 3]
    assert all((folder / f"node{n['index']}" / "node.pid").exists() for n in nodes)
    again = conclave("net", "up", "--dir", str(folder))
    assert again.returncode == 1 and "is running already" in again.stderr

    sender = up["accounts"][0]
    w3 = Web3(Web3.HTTPProvider(nodes[2]["rpcUrl"]))
    signed = w3.eth.account.sign_transaction(
        {
            "to": up["accounts"][1]["address"],
            "value": 1,
            "nonce": w3.eth.get_transaction_count(sender["address"]),
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "chainId": up["chainId"],
        },
        sender["privateKey"],
    )
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), 30)
    assert receipt["status"] == 1
    number, block_hash = receipt["blockNumber"], receipt["blockHash"]
    deadline = time.monotonic() + 15
    for node in nodes:
        other = Web3(Web3.HTTPProvider(node["rpcUrl"]))
        while other.eth.block_number < number:
            assert time.monotonic() < deadline, f"node{node['index']} did not reach block {number}"
            time.sleep(0.1)
        assert other.eth.get_block(number)["hash"] == block_hash, f"node{node['index']} holds another block"

    shown = conclave("net", "status", "--dir", str(folder), "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert [n["running"] for n in status["nodes"]] == [True] * 4
    assert all(n["head"]["number"] >= number for n in status["nodes"])

    stopped = conclave("net", "down", "--dir", str(folder))
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped node0, node1, node2, node3" in stopped.stdout
    assert not any((folder / f"node{n['index']}" / "node.pid").exists() for n in nodes)
    assert not any(runs(node["pid"]) for node in nodes)


def runs(pid: int) -> bool:
    """Whether `pid` is a live process (not one that exited and awaits its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] != "Z"
