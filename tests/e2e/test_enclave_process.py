"""End-to-end: the enclave in its own process; when it dies, the node restarts it."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
from web3 import Web3

from tests.e2e.chain_helpers import Signer, connect, fresh_account, wait_receipt
from tests.support.devnode import start_dev_node


def _status(rpc_url: str) -> httpx.Response:
    return httpx.get(rpc_url.rstrip("/") + "/node/status", timeout=10)


def test_the_enclave_runs_apart_and_comes_back_after_a_kill() -> None:
    node = start_dev_node("--ephemeral")
    try:
        w3: Web3 = connect(node)
        enclave = _status(node.rpc_url).json()["enclave"]
        assert enclave["mode"] == "process" and enclave["pid"] not in (os.getpid(), node.process.pid)
        alice = Signer(w3, node.accounts[0].key)
        before = alice.transact(to=fresh_account().address, value=7, gas=21_000)

        os.kill(enclave["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while True:
            status = _status(node.rpc_url)
            restarted = status.json()["enclave"]
            if restarted["alive"] and restarted["restarts"] >= 1:
                break
            assert status.status_code in (200, 503)
            assert time.monotonic() < deadline, "the node did not restart its enclave"
            time.sleep(0.1)
        assert restarted["pid"] != enclave["pid"] and restarted["measurement"] == enclave["measurement"]
        assert _status(node.rpc_url).status_code == 200

        assert w3.eth.get_transaction_receipt(before["transactionHash"]) == before
        after = alice.transact(to=fresh_account().address, value=8, gas=21_000)
        assert after["blockNumber"] == before["blockNumber"] + 1
        assert w3.eth.get_balance(alice.address) < 10_000 * 10**18
    finally:
        node.stop()


def test_an_in_process_enclave_is_one_flag_away() -> None:
    node = start_dev_node("--ephemeral", "--enclave", "in-process")
    try:
        enclave = _status(node.rpc_url).json()["enclave"]
        assert enclave["mode"] == "in-process"
        receipt = Signer(connect(node), node.accounts[0].key).transact(to=fresh_account().address, value=1)
        assert receipt["status"] == 1
    finally:
        node.stop()


def test_transactions_sent_at_once_are_admitted_together_each_answered_on_its_own() -> None:
    """With the enclave apart, transactions that arrive while an admission call is in flight
    go in one `admit_many` call; each request still gets its own hash or its own error."""
    node = start_dev_node("--ephemeral")
    try:
        w3: Web3 = connect(node)
        signers = [Signer(w3, account.key) for account in node.accounts[:4]]
        recipient = fresh_account().address
        signed = [
            [s.sign(to=recipient, value=1, gas=21_000, nonce=n).raw_transaction for n in range(6)]
            for s in signers
        ]
        answers: dict[int, list[dict[str, object]]] = {}

        def send(index: int) -> None:
            with httpx.Client(timeout=30) as client:
                bodies = ["0x" + raw.hex() for raw in signed[index]] + [
                    "0x02dead",
                    "0x" + signed[index][0].hex(),
                ]
                answers[index] = [
                    client.post(
                        node.rpc_url,
                        json={
                            "jsonrpc": "2.0",
                            "id": i,
                            "method": "eth_sendRawTransaction",
                            "params": [body],
                        },
                    ).json()
                    for i, body in enumerate(bodies)
                ]

        threads = [threading.Thread(target=send, args=(index,)) for index in range(len(signers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for index, got in answers.items():
            hashes = [answer["result"] for answer in got[:6]]
            assert hashes == ["0x" + Web3.keccak(raw).hex().removeprefix("0x") for raw in signed[index]]
            junk, again = got[6]["error"], got[7]["error"]
            assert isinstance(junk, dict) and isinstance(again, dict)
            assert "already known" not in str(junk["message"])
            assert "already known" in str(again["message"]) or "nonce too low" in str(again["message"])
            receipt = wait_receipt(w3, hashes[-1])
            assert receipt["status"] == 1
        metrics = httpx.get(node.rpc_url.rstrip("/") + "/metrics", timeout=10).text
        assert 'call="admit_many"' in metrics and 'call="admit"' not in metrics
    finally:
        node.stop()
