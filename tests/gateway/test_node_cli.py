"""`conclave node`: its config file, its keys, and one node started from a config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from enclave.attestation import measure_enclave, verify_quote
from gateway.cli import main
from gateway.node_cli import NODE_EPILOG, NodeSetupError, node_config, read_network_genesis, read_node_file
from tests.support.devnode import REPO_ROOT

MEMBER = "0x" + "a1" * 20
VALIDATOR = "0x" + "b2" * 20

FULL = """\
data_dir = "node0"
genesis = "genesis.json"
database_url = "postgresql+psycopg://conclave@localhost/node0"
join = "http://127.0.0.1:8545"
log_level = "warning"
[rpc]
host = "0.0.0.0"
port = 9545
rate_limit = 50
max_request_mib = 2
max_batch = 10
[p2p]
host = "127.0.0.1"
port = 30300
[consensus]
round_timeout = 0.5
[enclave]
mode = "in-process"
"""


def write(folder: Path, text: str, name: str = "node.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def write_genesis(folder: Path, *, validators: bool = True) -> Path:
    document: dict[str, object] = {"chainId": 4242, "consortium": {"members": [{"address": MEMBER}]}}
    if validators:
        document["timestamp"] = 1_767_225_600
        document["consortium"]["validators"] = [{"address": VALIDATOR, "endpoint": "127.0.0.1:30300"}]  # type: ignore[index]
    return write(folder, json.dumps(document), "genesis.json")


def test_a_config_file_is_read_with_paths_relative_to_it(tmp_path: Path) -> None:
    file = read_node_file(write(tmp_path, FULL))
    assert file.data_dir == tmp_path / "node0"
    assert file.genesis == tmp_path / "genesis.json"
    assert file.enclave_dir == tmp_path / "node0" / "enclave"
    assert file.ledger_url == "postgresql+psycopg://conclave@localhost/node0"
    assert file.join == "http://127.0.0.1:8545"
    assert (file.rpc.host, file.rpc.port, file.rpc.rate_limit) == ("0.0.0.0", 9545, 50.0)
    assert (file.rpc.max_request_mib, file.rpc.max_batch, file.rpc.log_level) == (2, 10, "warning")
    assert file.p2p == ("127.0.0.1", 30300)
    assert (file.round_timeout, file.enclave_mode) == (0.5, "in-process")


def test_only_the_data_dir_and_the_genesis_are_needed(tmp_path: Path) -> None:
    file = read_node_file(write(tmp_path, 'data_dir = "d"\ngenesis = "g.json"\n'))
    assert file.ledger_url == f"sqlite:///{tmp_path / 'd' / 'ledger.sqlite'}"
    assert (file.rpc.host, file.rpc.port, file.rpc.rate_limit) == ("127.0.0.1", 8545, None)
    assert (file.p2p, file.join, file.round_timeout, file.enclave_mode) == (None, None, 1.0, "process")


def test_the_example_in_the_help_is_a_valid_config(tmp_path: Path) -> None:
    example = NODE_EPILOG.split("A config file (TOML; paths are relative to it):\n", 1)[1]
    example = example.split("\n\nThe validators start", 1)[0]
    file = read_node_file(
        write(tmp_path, "\n".join(line.removeprefix("  ") for line in example.splitlines()))
    )
    assert (file.data_dir, file.p2p, file.rpc.port) == (tmp_path / "node0", ("127.0.0.1", 30300), 8545)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('genesis = "g.json"', "data_dir: missing: set it to the node's data folder"),
        ('data_dir = "d"', "genesis: missing: set it to the network's genesis document"),
        (
            'data_dir = "d"\ngenesis = "g"\nport = 1',
            "unknown key port: the top level takes data_dir, genesis",
        ),
        ('data_dir = "d"\ngenesis = "g"\n[rpc]\nprot = 1', "unknown key rpc.prot: [rpc] takes host, port"),
        ('data_dir = "d"\ngenesis = "g"\n[rpc]\nport = "8545"', "rpc.port: expected a whole number from 0"),
        ('data_dir = "d"\ngenesis = "g"\n[rpc]\nport = 70000', "rpc.port: expected a whole number"),
        ('data_dir = "d"\ngenesis = "g"\n[rpc]\nport = true', "rpc.port: expected a whole number"),
        ('data_dir = "d"\ngenesis = "g"\nrpc = 5', "rpc: expected a table ([rpc])"),
        ('data_dir = "d"\ngenesis = "g"\n[p2p]\nhost = "::"', "p2p.port: missing: set it to a whole number"),
        ('data_dir = "d"\ngenesis = "g"\n[p2p]\nport = 0', "p2p.port: expected a whole number from 1 to"),
        (
            'data_dir = "d"\ngenesis = "g"\n[consensus]\nround_timeout = 0',
            "consensus.round_timeout: expected",
        ),
        ('data_dir = "d"\ngenesis = "g"\n[enclave]\nmode = "sgx"', "enclave.mode: expected one of process"),
        ('data_dir = "d"\ngenesis = "g"\nlog_level = "loud"', "log_level: expected one of debug"),
        (
            'data_dir = "d"\ngenesis = "g"\njoin = "127.0.0.1:8545"',
            "join: expected an http:// or https:// URL",
        ),
        ('data_dir = 5\ngenesis = "g"', "data_dir: expected the node's data folder"),
        ('data_dir = "d', "not valid TOML"),
    ],
)
def test_a_bad_config_names_the_key_and_what_to_do(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(NodeSetupError) as refused:
        read_node_file(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert words in str(refused.value)


def test_the_genesis_sets_the_network_and_the_config_the_node(tmp_path: Path) -> None:
    write_genesis(tmp_path)
    file = read_node_file(write(tmp_path, FULL))
    config = node_config(file, read_network_genesis(file))
    assert (config.chain_id, config.genesis_timestamp, config.p2p_listen) == (4242, 1_767_225_600, file.p2p)
    assert (config.join_url, config.round_timeout, config.enclave_dir) == (file.join, 0.5, file.enclave_dir)
    assert config.genesis_governance is not None and len(config.genesis_governance.validators) == 1
    assert not config.dev_mode


@pytest.mark.parametrize(
    ("config", "genesis", "words"),
    [
        ('data_dir = "d"\ngenesis = "none.json"', None, "genesis: {dir}/none.json does not exist"),
        ('data_dir = "d"\ngenesis = "genesis.json"', "{}", "cannot be used: consortium.members"),
        ('data_dir = "d"\ngenesis = "genesis.json"', "validators", "needs [p2p] host and port"),
        ('data_dir = "d"\ngenesis = "genesis.json"\ndatabase_url = "sqlite://"', "plain", "in-memory"),
    ],
)
def test_a_node_that_cannot_start_exits_with_2_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, genesis: str | None, words: str
) -> None:
    if genesis in ("validators", "plain"):
        write_genesis(tmp_path, validators=genesis == "validators")
    elif genesis is not None:
        write(tmp_path, genesis, "genesis.json")
    assert main(["node", "--config", str(write(tmp_path, config))]) == 2
    assert words.format(dir=tmp_path) in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_node_without_a_config_says_what_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node"]) == 2
    assert "needs --config FILE" in capsys.readouterr().err


# -- keys -----------------------------------------------------------------------------------


def keys(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    assert main(["node", "keys", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_nodes_made_with_one_root_share_it_and_differ_in_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = keys(capsys, "--data-dir", str(tmp_path / "a"))
    root_file = tmp_path / "a" / "enclave" / "attestation-root.bin"
    second = keys(capsys, "--data-dir", str(tmp_path / "b"), "--attestation-root", str(root_file))
    assert second["attestationRoot"] == first["attestationRoot"]
    assert second["address"] != first["address"]
    assert second["measurement"] == first["measurement"] == "0x" + measure_enclave(REPO_ROOT).hex()
    # Opened again, the keys are the same (with the same root given again, too).
    assert keys(capsys, "--data-dir", str(tmp_path / "b"), "--attestation-root", str(root_file)) | {
        "quote": ""
    } == second | {"quote": ""}


def test_the_quote_verifies_under_the_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shown = keys(capsys, "--data-dir", str(tmp_path))
    assert main(["node", "keys", "--data-dir", str(tmp_path), "--quote"]) == 0
    quote = capsys.readouterr().out.strip()
    verified = verify_quote(
        bytes.fromhex(quote[2:]),
        roots=[bytes.fromhex(shown["attestationRoot"][2:])],
        approved_measurements=[bytes.fromhex(shown["measurement"][2:])],
        now=int(time.time()),
        max_age=60,
    )
    assert "0x" + verified.node_public_key.hex() == shown["publicKey"]


def test_a_platform_keeps_its_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys(capsys, "--data-dir", str(tmp_path / "a"))
    keys(capsys, "--data-dir", str(tmp_path / "b"))
    other_root = tmp_path / "b" / "enclave" / "attestation-root.bin"
    assert (
        main(["node", "keys", "--data-dir", str(tmp_path / "a"), "--attestation-root", str(other_root)]) == 2
    )
    assert "holds a platform certified by another attestation root" in capsys.readouterr().err
    not_a_root = write(tmp_path, "hello", "root.bin")
    assert (
        main(["node", "keys", "--data-dir", str(tmp_path / "c"), "--attestation-root", str(not_a_root)]) == 2
    )
    assert "not an attestation root key" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


# -- one node ---------------------------------------------------------------------------------


def test_a_node_starts_from_its_config_and_announces_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = keys(capsys, "--data-dir", str(tmp_path / "node0"))["address"]
    write_genesis(tmp_path, validators=False)
    config = write(
        tmp_path,
        'data_dir = "node0"\ngenesis = "genesis.json"\nlog_level = "warning"\n'
        '[rpc]\nport = 0\n[enclave]\nmode = "in-process"\n',
    )
    log = tmp_path / "node.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "node", "--config", str(config), "--json"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"the node exited before announcing itself: {log.read_text()}"
        announced = json.loads(line)
        assert announced["nodeAddress"] == address
        assert (announced["chainId"], announced["p2p"]) == (4242, None)
        assert announced["dataDir"] == str(tmp_path / "node0")
        assert announced["rpcUrl"].startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 30
        while not _answers(announced["rpcUrl"]):  # serving: SIGTERM stops it cleanly
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/node/status", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
