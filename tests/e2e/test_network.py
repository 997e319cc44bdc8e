"""Four validators as separate processes on 127.0.0.1 (`conclave net up`): agreement,
the proposer killed under load, two of four down, a node cut off and back.

The tests of this module run in order on one network (each leaves it whole again)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from tests.support.local_network import LocalNetwork

VALIDATORS = 4
ROUND_TIMEOUT = 1.0  # the node default, which `net up` keeps


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    network = LocalNetwork(tmp_path_factory.mktemp("net") / "network", VALIDATORS)
    try:
        yield network
    finally:
        network.down()


class Sender:
    """One account's transfers, signed here and sent to the nodes it is told."""

    def __init__(self, net: LocalNetwork, account: int) -> None:
        self.net = net
        self.account = Account.from_key(net.accounts[account]["privateKey"])
        self.nonce = int(net.rpc(0, "eth_getTransactionCount", self.account.address, "pending"), 16)
        self.chain_id = int(net.rpc(0, "eth_chainId"), 16)

    def send(self, node: int) -> str:
        signed = self.account.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": self.nonce,
                "to": "0x000000000000000000000000000000000000dEaD",
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        tx_hash: str = self.net.rpc(node, "eth_sendRawTransaction", signed.raw_transaction.to_0x_hex())
        self.nonce += 1
        return tx_hash


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.1)


def committed_everywhere(net: LocalNetwork, nodes: list[int], tx_hashes: list[str]) -> bool:
    return all(net.rpc(i, "eth_getTransactionReceipt", h) is not None for i in nodes for h in tx_hashes)


def assert_one_chain(net: LocalNetwork, nodes: list[int]) -> None:
    """Every node holds the same blocks, with the same state roots, up to the lowest head."""
    top = min(net.head(i)[0] for i in nodes)
    for number in range(top + 1):
        blocks = [net.block(i, number) for i in nodes]
        assert len({(b["hash"], b["stateRoot"]) for b in blocks}) == 1, f"block {number} differs"


def proposer_index(net: LocalNetwork) -> int:
    status = net.rpc(0, "conclave_consensusStatus")
    addresses = [node["address"].lower() for node in net.info["nodes"]]
    return addresses.index(status["proposer"].lower())


def test_transactions_sent_to_any_node_are_committed_by_all(net: LocalNetwork) -> None:
    sender = Sender(net, 1)
    sent = [sender.send(i % VALIDATORS) for i in range(8)]
    wait_for(lambda: committed_everywhere(net, list(range(VALIDATORS)), sent), 30, "commits")
    wait_for(lambda: len({net.head(i) for i in range(VALIDATORS)}) == 1, 10, "one head")
    assert_one_chain(net, list(range(VALIDATORS)))
    w3 = Web3(Web3.HTTPProvider(net.urls[2]))
    receipt = w3.eth.get_transaction_receipt(sent[-1])
    assert receipt["status"] == 1
    certificate = net.rpc(2, "conclave_getBlockCertificate", hex(receipt["blockNumber"]))
    assert len(certificate["signers"]) >= 3 and certificate["blockHash"] == receipt["blockHash"].to_0x_hex()
    validators = net.rpc(3, "qbft_getValidatorsByBlockNumber", "latest")
    assert sorted(v.lower() for v in validators) == sorted(n["address"].lower() for n in net.info["nodes"])


def test_the_proposer_killed_under_load_the_others_go_on_and_it_catches_up(net: LocalNetwork) -> None:
    victim = proposer_index(net)
    live = [i for i in range(VALIDATORS) if i != victim]
    sender = Sender(net, 2)
    accepted: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            accepted.append(sender.send(live[len(accepted) % len(live)]))
            time.sleep(0.02)

    loader = threading.Thread(target=load)
    loader.start()
    try:
        time.sleep(1)
        height_at_kill = net.head(live[0])[0]
        net.kill(victim)
        wait_for(lambda: net.head(live[0])[0] >= height_at_kill + 2, 6 * ROUND_TIMEOUT + 10, "progress")
        time.sleep(1)
    finally:
        stop.set()
        loader.join()
    wait_for(lambda: committed_everywhere(net, live, accepted), 30, "every accepted transfer committed")
    net.start(victim)
    wait_for(lambda: net.head(victim) == net.head(live[0]), 30, "the restarted node caught up")
    assert_one_chain(net, list(range(VALIDATORS)))


def test_two_of_four_down_commit_nothing_until_one_returns(net: LocalNetwork) -> None:
    down = [2, 3]
    for index in down:
        net.kill(index)
    live = [0, 1]
    before = net.head(0)[0]
    tx = Sender(net, 3).send(0)
    time.sleep(4 * ROUND_TIMEOUT)
    assert [net.head(i)[0] for i in live] == [before, before]  # no quorum: no block, no fork
    assert net.rpc(0, "eth_getTransactionReceipt", tx) is None
    net.start(2)
    wait_for(lambda: committed_everywhere(net, [0, 1, 2], [tx]), 60, "progress with three of four")
    net.start(3)
    wait_for(lambda: net.head(3) == net.head(0), 30, "the last node caught up")
    assert_one_chain(net, list(range(VALIDATORS)))


def test_a_node_cut_off_and_back_catches_up(net: LocalNetwork) -> None:
    cut = 1
    others = [0, 2, 3]
    net.pause(cut)
    try:
        sender = Sender(net, 4)
        sent = [sender.send(others[i % 3]) for i in range(6)]
        wait_for(lambda: committed_everywhere(net, others, sent), 30, "the others commit without it")
        time.sleep(2)
    finally:
        net.resume(cut)
    wait_for(lambda: committed_everywhere(net, [cut], sent), 30, "the node cut off caught up")
    wait_for(lambda: net.head(cut) == net.head(0), 20, "one head again")
    assert_one_chain(net, list(range(VALIDATORS)))


def test_the_network_folder_holds_no_key_in_clear(net: LocalNetwork) -> None:
    """Each node's keys are sealed by its enclave: no dev account or node key file in clear."""
    for path in Path(net.folder).rglob("*"):
        if path.is_file() and path.suffix in (".json", ".toml"):
            text = path.read_text()
            assert "privateKey" not in text and "private_key" not in text
