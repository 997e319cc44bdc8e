"""End-to-end: the `conclave` command line.

Help output, the `--json` start-up line, flags that change the chain, and flag values
that must be refused before anything starts (exit status 2 with a message, as argparse
does). Every node started here uses `--port 0` and `--ephemeral`, so nothing touches the
default port or data directory.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3 import Web3

from tests.e2e.chain_helpers import (
    ETHER,
    REPO_ROOT,
    STANDARD_DEV_ADDRESSES,
    conclave_command,
    run_conclave,
)
from tests.support.devnode import start_dev_node

FIRST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_help_explains_the_commands_and_flags() -> None:
    top = run_conclave("--help")
    assert top.returncode == 0, top
    assert "usage: conclave" in top.stdout
    assert "dev" in top.stdout

    result = run_conclave("dev", "--help")
    assert result.returncode == 0, result
    text = result.stdout
    for flag in (
        "--host",
        "--port",
        "--chain-id",
        "--data-dir",
        "--ephemeral",
        "--database-url",
        "--block-time",
        "--gas-limit",
        "--accounts",
        "--balance",
        "--mnemonic",
        "--json",
    ):
        assert flag in text, f"{flag} is not explained in `conclave dev --help`"
    assert "1337" in text, "the default chain id is shown"
    assert "examples:" in text


def test_json_start_up_line_and_standard_accounts(dev_node: Any) -> None:
    """The shared dev node runs with the default flags and --json; DevNode parsed its start-up line."""
    node = dev_node
    assert node.rpc_url.startswith("http://127.0.0.1:")
    assert node.chain_id == 1337
    addresses = [a.address for a in node.accounts]
    assert addresses == list(STANDARD_DEV_ADDRESSES)
    assert node.accounts[0].key == FIRST_KEY
    for account in node.accounts:
        assert Account.from_key(account.key).address == account.address
    assert node.result("eth_chainId") == hex(1337)
    assert node.result("eth_accounts") == addresses
    for address in addresses:
        # At genesis: other tests on the shared node spend from these accounts later.
        assert int(node.result("eth_getBalance", [address, "earliest"]), 16) == 10_000 * ETHER


def test_chain_id_block_time_and_account_flags() -> None:
    node = start_dev_node(
        "--ephemeral",
        "--chain-id",
        "4242",
        "--block-time",
        "1",
        "--gas-limit",
        "10000000",
        "--balance",
        "5",
        "--accounts",
        "3",
    )
    try:
        started = time.monotonic()
        first = int(node.result("eth_blockNumber"), 16)
        # --chain-id
        assert node.chain_id == 4242
        assert node.result("eth_chainId") == hex(4242)
        assert node.result("net_version") == "4242"
        # --accounts, --balance, --gas-limit
        assert len(node.accounts) == 3
        assert [a.address for a in node.accounts] == list(STANDARD_DEV_ADDRESSES[:3])
        assert node.result("eth_accounts") == [a.address for a in node.accounts]
        assert int(node.result("eth_getBalance", [node.accounts[2].address, "latest"]), 16) == 5 * ETHER
        assert node.result("eth_getBlockByNumber", ["earliest", False])["gasLimit"] == hex(10_000_000)
        # --block-time 1: empty blocks are sealed over time.
        time.sleep(max(0.0, 3.5 - (time.monotonic() - started)))
        head = int(node.result("eth_blockNumber"), 16)
        elapsed = time.monotonic() - started
        assert head - first >= 2, f"only {head - first} blocks in {elapsed:.1f} s with --block-time 1"
        assert head - first <= elapsed + 1.5
        timestamps = []
        for number in range(1, head + 1):
            block = node.result("eth_getBlockByNumber", [hex(number), False])
            assert block["transactions"] == []
            assert block["gasUsed"] == "0x0"
            timestamps.append(int(block["timestamp"], 16))
        assert timestamps == sorted(timestamps)
        assert timestamps[-1] > timestamps[0]
    finally:
        node.stop()


BAD_VALUES = [
    (["--block-time", "-1"], "--block-time"),
    (["--chain-id", "0"], "--chain-id"),
    (["--port", "70000"], "--port"),
    (["--gas-limit", "0"], "--gas-limit"),
    (["--gas-limit", "-1"], "--gas-limit"),
    (["--accounts", "-1"], "--accounts"),
    (["--balance", "-1"], "--balance"),
]


def test_bad_flag_values_exit_2_with_a_message() -> None:
    """Each bad value is refused before anything starts: exit status 2, usage and a message naming the flag.

    The cases run concurrently (each `conclave` start imports py-evm, which takes seconds);
    an in-memory database keeps a start that goes wrong from leaving files behind.
    """
    launched = []
    for args, mentions in BAD_VALUES:
        store = [] if "--ephemeral" in args else ["--database-url", "sqlite://"]
        port = [] if "--port" in args else ["--port", "0"]
        launched.append((args, mentions, launch("dev", "--json", *store, *port, *args)))
    wrong = []
    for args, mentions, process in launched:
        outcome = outcome_of(process)
        what = f"conclave dev {' '.join(args)}"
        if outcome.started:
            wrong.append(f"{what}: started a node instead of refusing the value")
        elif outcome.returncode != 2:
            last = outcome.stderr.strip().splitlines()[-1:] or [""]
            wrong.append(f"{what}: exit status {outcome.returncode}, expected 2 ({last[0][:150]})")
        elif mentions not in outcome.stderr or "usage:" not in outcome.stderr:
            wrong.append(f"{what}: the message does not name {mentions}: {outcome.stderr[-300:]}")
        elif "Traceback" in outcome.stderr:
            wrong.append(f"{what}: a traceback instead of a message")
    assert not wrong, "\n".join(wrong)


@dataclass
class Outcome:
    started: bool
    returncode: int | None
    stderr: str


def launch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        conclave_command(*args), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def outcome_of(process: subprocess.Popen[str], timeout: float = 60) -> Outcome:
    """Either the process exits (refused) or announces itself with --json (started: then it is killed)."""
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        if line and "rpcUrl" in line:
            process.send_signal(signal.SIGKILL)
            _, stderr = process.communicate(timeout=timeout)
            return Outcome(True, None, stderr)
        _, stderr = process.communicate(timeout=timeout)
        return Outcome(False, process.returncode, stderr)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_standard_addresses_are_checksummed() -> None:
    for address in STANDARD_DEV_ADDRESSES:
        assert Web3.to_checksum_address(address) == address
