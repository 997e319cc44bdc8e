"""End-to-end: the enclave in its own process; when it dies, the node restarts it."""

from __future__ import annotations

import os
import signal
import time

import httpx
from web3 import Web3

from tests.e2e.chain_helpers import Signer, connect, fresh_account
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
