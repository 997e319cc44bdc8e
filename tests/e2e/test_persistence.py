"""End-to-end: the ledger survives kills and restarts on the same data directory.

Each test runs its own node on a database of its own; the kill tests run on SQLite and on
PostgreSQL. "Identical" means the
raw JSON-RPC answers are equal byte for byte after the restart: blocks with their full
transactions, receipts, logs, balances, code and storage.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from web3 import Web3

from tests.e2e.chain_helpers import (
    ETHER,
    REPO_ROOT,
    Signer,
    conclave_command,
    connect,
    fresh_account,
    run_conclave,
    wait_receipt,
)
from tests.support.devnode import DevNode, start_dev_node


def start(database_url: str, data_dir: Path) -> DevNode:
    """A dev node on `database_url`; its enclave keeps its keys (which seal the state) in `data_dir`."""
    return start_dev_node("--database-url", database_url, "--data-dir", str(data_dir))


def snapshot(node: DevNode, accounts: list[str], contracts: list[str]) -> dict[str, Any]:
    """Everything the chain holds up to its head, as raw JSON-RPC answers."""
    head = int(node.result("eth_blockNumber"), 16)
    blocks = [node.result("eth_getBlockByNumber", [hex(n), True]) for n in range(head + 1)]
    receipts = [node.result("eth_getBlockReceipts", [hex(n)]) for n in range(head + 1)]
    transactions = {
        tx["hash"]: node.result("eth_getTransactionByHash", [tx["hash"]])
        for b in blocks
        for tx in b["transactions"]
    }
    single_receipts = {h: node.result("eth_getTransactionReceipt", [h]) for h in transactions}
    state = {
        address: {
            "balance": [node.result("eth_getBalance", [address, hex(n)]) for n in range(head + 1)],
            "nonce": node.result("eth_getTransactionCount", [address, "latest"]),
            "code": node.result("eth_getCode", [address, "latest"]),
            "slot0": node.result("eth_getStorageAt", [address, "0x0", "latest"]),
        }
        for address in accounts + contracts
    }
    return {
        "head": head,
        "blocks": blocks,
        "receipts": receipts,
        "transactions": transactions,
        "single_receipts": single_receipts,
        "logs": node.result("eth_getLogs", [{"fromBlock": "0x0", "toBlock": hex(head)}]),
        "state": state,
    }


def assert_chain_links(node: DevNode) -> int:
    """Blocks 0..head exist, link by parentHash with no gap, and every transaction has a receipt."""
    head = int(node.result("eth_blockNumber"), 16)
    parent = "0x" + "00" * 32
    for number in range(head + 1):
        block = node.result("eth_getBlockByNumber", [hex(number), False])
        assert block is not None, f"block {number} missing below head {head}"
        assert int(block["number"], 16) == number
        assert block["parentHash"] == parent, f"block {number} does not link to block {number - 1}"
        receipts = node.result("eth_getBlockReceipts", [hex(number)])
        assert [r["transactionHash"] for r in receipts] == block["transactions"]
        parent = block["hash"]
    assert node.result("eth_getBlockByNumber", [hex(head + 1), False]) is None
    return head


def continue_chain(node: DevNode, signer_key: str) -> Any:
    """A new transaction is mined at head + 1 on top of the head."""
    w3 = connect(node)
    head = w3.eth.get_block("latest")
    receipt = Signer(w3, signer_key).transact(to=fresh_account().address, value=1, gas=21_000)
    assert receipt["status"] == 1
    assert receipt["blockNumber"] == head["number"] + 1
    assert w3.eth.get_block(receipt["blockNumber"])["parentHash"] == head["hash"]
    return receipt


def test_committed_blocks_survive_sigkill(database_url: str, tmp_path: Path) -> None:
    node = start(database_url, tmp_path)
    keys = [a.key for a in node.accounts[:3]]
    accounts = [a.address for a in node.accounts[:3]]
    try:
        w3 = connect(node)
        alice, bob = Signer(w3, keys[0]), Signer(w3, keys[1])
        token, _ = alice.deploy("ConclaveToken", "Conclave", "CNV", 10**24)
        alice.call_fn(token.functions.transfer(bob.address, 1234))
        bob.transact(to=accounts[2], value=ETHER, gas=21_000)
        probe, _ = alice.deploy("Probe")
        alice.call_fn(probe.functions.emitMany(4))
        alice.call_fn(probe.functions.spawnChild(3), value=5)
        bob.call_fn(token.functions.transfer(accounts[2], 34))
        contracts = [token.address, probe.address, probe.functions.lastChild().call()]
        before = snapshot(node, accounts, contracts)
        assert before["head"] == 7
        assert len(before["logs"]) == 1 + 1 + 7 + 2 + 1
    finally:
        node.kill()  # between blocks: the last receipt was seen, nothing is waiting
    assert node.process.returncode == -signal.SIGKILL

    node = start(database_url, tmp_path)
    try:
        assert snapshot(node, accounts, contracts) == before
        w3 = connect(node)
        token = w3.eth.contract(address=token.address, abi=token.abi)
        assert token.functions.balanceOf(bob.address).call() == 1200
        assert token.functions.balanceOf(accounts[2]).call() == 34
        # The chain continues on top of the committed head, with the senders' nonces.
        assert w3.eth.get_transaction_count(accounts[0], "pending") == 5
        receipt = continue_chain(node, keys[0])
        assert receipt["blockNumber"] == before["head"] + 1
        bob = Signer(w3, keys[1])
        assert bob.call_fn(token.functions.transfer(accounts[0], 1))["blockNumber"] == before["head"] + 2
        assert_chain_links(node)
    finally:
        node.stop()


def launch(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start `conclave dev --json ARGS` and wait until it answers; return it and its start-up line."""
    process = subprocess.Popen(
        conclave_command("dev", "--port", "0", "--json", "--log-level", "warning", *args),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"conclave dev exited: {process.communicate(timeout=10)}"
    info = json.loads(line)
    deadline = time.monotonic() + 30
    while True:
        try:
            body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
            if "result" in httpx.post(info["rpcUrl"], json=body, timeout=5).json():
                return process, info
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "the node did not start answering"
        time.sleep(0.05)


def terminate(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        _, stderr = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"the node did not exit within 20 s of signal {sig}") from None
    return process.returncode, stderr


def test_sigterm_exit_restart_and_another_chain_id(tmp_path: Path) -> None:
    """SIGTERM exits 0; another --chain-id is refused; the data stays usable; Ctrl-C exits 0."""
    process, info = launch("--data-dir", str(tmp_path))
    w3 = Web3(Web3.HTTPProvider(info["rpcUrl"]))
    receipt = Signer(w3, info["accounts"][0]["privateKey"]).transact(
        to=fresh_account().address, value=1, gas=21_000
    )
    genesis = w3.eth.get_block(0)
    code, stderr = terminate(process, signal.SIGTERM)
    assert code == 0, f"SIGTERM should exit 0, got {code}; stderr: {stderr[-2000:]}"
    assert "Traceback" not in stderr, stderr

    refused = run_conclave("dev", "--port", "0", "--json", "--data-dir", str(tmp_path), "--chain-id", "4242")
    assert refused.returncode != 0
    assert "rpcUrl" not in refused.stdout, "a refused start must not announce an RPC URL"
    message = refused.stderr
    assert "--chain-id" in message and "--data-dir" in message, message
    assert "1337" in message and "4242" in message, message
    assert "Traceback" not in message, message

    # The data directory is unharmed: the original chain opens as before.
    process, info = launch("--data-dir", str(tmp_path))
    try:
        w3 = Web3(Web3.HTTPProvider(info["rpcUrl"]))
        assert w3.eth.chain_id == 1337
        assert w3.eth.get_block(0) == genesis
        assert w3.eth.get_transaction_receipt(receipt["transactionHash"]) == receipt
        assert w3.eth.block_number == receipt["blockNumber"]
    finally:
        code, stderr = terminate(process, signal.SIGINT)
    assert code == 0, f"SIGINT (Ctrl-C) should exit 0, got {code}; stderr: {stderr[-2000:]}"
    assert "Traceback" not in stderr, stderr


def test_ephemeral_data_dir_is_removed_on_sigterm() -> None:
    process, info = launch("--ephemeral")
    data_dir = Path(info["dataDir"])
    assert data_dir.is_dir()
    code, stderr = terminate(process)
    assert code == 0, stderr[-2000:]
    assert not data_dir.exists(), f"--ephemeral left {data_dir} behind after SIGTERM"


def test_sigkill_during_a_burst_loses_nothing_a_client_saw(database_url: str, tmp_path: Path) -> None:
    node = start(database_url, tmp_path)
    w3 = connect(node)
    chain_id = node.chain_id
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    senders = [Account.from_key(a.key) for a in node.accounts[:6]]
    recipients: dict[str, str] = {}
    signed = []
    for nonce in range(40):
        for sender in senders:
            to = fresh_account().address
            tx = sender.sign_transaction(
                {
                    "chainId": chain_id,
                    "nonce": nonce,
                    "to": to,
                    "value": 1000 + nonce,
                    "gas": 21_000,
                    "maxFeePerGas": 4 * base + 10**9,
                    "maxPriorityFeePerGas": 10**9,
                }
            )
            recipients[tx.hash.to_0x_hex()] = to
            signed.append(tx)

    sent: list[str] = []
    seen: dict[str, dict[str, Any]] = {}
    killed = threading.Event()
    sending_done = threading.Event()
    killed_with: list[int] = []
    client = httpx.Client(timeout=10)

    def poll_receipts() -> None:
        while not killed.is_set():
            pending = [h for h in list(sent) if h not in seen]
            if pending:
                batch = [
                    {"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [h]}
                    for i, h in enumerate(pending[:100])
                ]
                try:
                    answers = client.post(node.rpc_url, json=batch).json()
                except (httpx.HTTPError, ValueError):
                    return
                for answer in answers:
                    if answer.get("result"):
                        seen[pending[answer["id"]]] = answer["result"]
            in_flight = len(sent) - len(seen)
            if len(seen) >= 30 and in_flight > 0 and not killed.is_set():
                node.process.send_signal(signal.SIGKILL)  # in the middle of the burst
                killed_with.append(in_flight)
                killed.set()
                return
            if sending_done.is_set() and in_flight == 0:
                return  # everything was mined before the threshold: no kill during the burst
            time.sleep(0.01)

    poller = threading.Thread(target=poll_receipts)
    poller.start()
    try:
        for start_index in range(0, len(signed), len(senders)):
            chunk = signed[start_index : start_index + len(senders)]
            batch = [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "eth_sendRawTransaction",
                    "params": [tx.raw_transaction.to_0x_hex()],
                }
                for i, tx in enumerate(chunk)
            ]
            try:
                answers = client.post(node.rpc_url, json=batch).json()
            except (httpx.HTTPError, ValueError):
                break
            for answer in answers:
                assert "result" in answer, answer
                sent.append(answer["result"])
    finally:
        sending_done.set()
        poller.join(timeout=30)
        client.close()
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=10)
    assert killed.is_set(), f"the burst ended before the kill ({len(seen)} receipts seen)"
    assert killed_with[0] > 0, "transactions were in flight at the kill"

    node = start(database_url, tmp_path)
    try:
        for tx_hash, receipt in seen.items():
            assert node.result("eth_getTransactionReceipt", [tx_hash]) == receipt
            block = node.result("eth_getBlockByNumber", [receipt["blockNumber"], False])
            assert block["hash"] == receipt["blockHash"]
            assert tx_hash in block["transactions"]
            assert int(node.result("eth_getBalance", [recipients[tx_hash], "latest"]), 16) > 0
        head = assert_chain_links(node)
        assert head >= max(int(r["blockNumber"], 16) for r in seen.values())
        # Nonces continue from what was committed, and the chain grows on top of the head.
        w3 = connect(node)
        for sender in senders:
            committed = w3.eth.get_transaction_count(sender.address, "latest")
            assert w3.eth.get_transaction_count(sender.address, "pending") == committed
        last = continue_chain(node, node.accounts[6].key)
        receipt = wait_receipt(w3, last["transactionHash"])
        assert receipt["blockNumber"] == head + 1
    finally:
        node.stop()
