"""End-to-end: a consortium governs a real dev node through the governance system contract
with web3.py (the node's enclave in its own process): members are added by vote, a user is
admitted by two of three, a non-member's ballot reverts, a removed user's transaction is
refused at admission, and an expired proposal takes no ballot."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_abi import encode as abi_encode
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from governance.constitution import TWO_THIRDS, Constitution, Threshold
from governance.state import Action
from governance.system_contract import ABI, GOVERNANCE_ADDRESS, encode_action
from tests.e2e.chain_helpers import connect, wait_receipt
from tests.e2e.test_js_clients import run_flow
from tests.support.devnode import DevNode, start_dev_node

ACCEPTED, OPEN = 1, 0
WEEK = 7 * 24 * 3600


@pytest.fixture
def node() -> Iterator[DevNode]:
    """A new dev node for each test: its first account governs alone."""
    node = start_dev_node("--ephemeral")
    yield node
    node.stop()


@pytest.fixture
def w3(node: DevNode) -> Web3:
    return connect(node)


@pytest.fixture
def gov(w3: Web3) -> Any:
    return w3.eth.contract(address=Web3.to_checksum_address(GOVERNANCE_ADDRESS), abi=ABI)


def send(w3: Web3, fn: Any, sender: str) -> Any:
    receipt = wait_receipt(w3, fn.transact({"from": sender}))
    assert receipt["status"] == 1, receipt
    return receipt


def proposal_state(gov: Any, pid: int) -> int:
    return int(gov.functions.proposal(pid).call()[1])


def propose(w3: Web3, gov: Any, sender: str, kind: str, types: list[str], values: list[Any]) -> int:
    receipt = send(w3, gov.functions.propose([(kind, abi_encode(types, values))]), sender)
    (created,) = gov.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
    return int(created["args"]["id"])


def found_consortium(node: DevNode, w3: Web3, gov: Any) -> None:
    """The dev chain's sole member adds the next two accounts: three members."""
    alice, bob, carol = (account.address for account in node.accounts[:3])
    assert gov.functions.members().call() == [alice]  # a dev chain's first account governs alone

    pid = propose(w3, gov, alice, "add_member", ["address", "string", "string"], [bob, "Bob", ""])
    send(w3, gov.functions.vote(pid, True), alice)
    assert proposal_state(gov, pid) == ACCEPTED
    pid = propose(w3, gov, alice, "add_member", ["address", "string", "string"], [carol, "Carol", ""])
    send(w3, gov.functions.vote(pid, True), alice)
    assert proposal_state(gov, pid) == OPEN  # two thirds of two members is two
    receipt = send(w3, gov.functions.vote(pid, True), bob)
    (resolved,) = gov.events.ProposalResolved().process_receipt(receipt, errors=DISCARD)
    assert resolved["args"]["state"] == ACCEPTED
    assert sorted(gov.functions.members().call()) == sorted([alice, bob, carol])


def test_a_consortium_of_three_admits_a_user_by_two_votes(node: DevNode, w3: Web3, gov: Any) -> None:
    found_consortium(node, w3, gov)
    alice, bob, carol, dave, erin = (account.address for account in node.accounts[:5])

    # A permissioned network, then a user admitted by two of three.
    pid = propose(w3, gov, bob, "set_config", ["string", "uint256"], ["open_submission", 0])
    send(w3, gov.functions.vote(pid, True), bob)
    send(w3, gov.functions.vote(pid, True), carol)
    assert proposal_state(gov, pid) == ACCEPTED
    refused = node.rpc("eth_sendTransaction", [{"from": dave, "to": alice, "value": "0x1"}])["error"]
    assert refused["code"] == -32007 and "not a user" in refused["message"]

    pid = propose(w3, gov, carol, "add_user", ["address", "bool"], [dave, False])
    send(w3, gov.functions.vote(pid, True), carol)
    assert not gov.functions.isUser(dave).call()
    send(w3, gov.functions.vote(pid, True), alice)
    assert gov.functions.isUser(dave).call()
    wait_receipt(w3, w3.eth.send_transaction({"from": dave, "to": alice, "value": 1}))

    # Only members vote: a non-member's ballot reverts with the reason.
    with pytest.raises(ContractLogicError, match="is not a member"):
        gov.functions.vote(pid, True).transact({"from": erin})

    # A removed user is refused again.
    pid = propose(w3, gov, alice, "remove_user", ["address"], [dave])
    send(w3, gov.functions.vote(pid, True), alice)
    send(w3, gov.functions.vote(pid, True), bob)
    refused = node.rpc("eth_sendTransaction", [{"from": dave, "to": alice, "value": "0x1"}])["error"]
    assert refused["code"] == -32007


def test_an_expired_proposal_takes_no_ballot(node: DevNode, w3: Web3, gov: Any) -> None:
    alice = node.accounts[0].address
    pid = propose(w3, gov, alice, "rotate_ledger_secret", [], [])
    closes_at = gov.functions.proposal(pid).call()[3]
    assert closes_at == w3.eth.get_block("latest")["timestamp"] + WEEK
    node.result("evm_mine", [closes_at])
    with pytest.raises(ContractLogicError, match=f"proposal {pid} is expired"):
        gov.functions.vote(pid, True).transact({"from": alice})
    assert proposal_state(gov, pid) == OPEN  # closed by the next change, which records it


def test_members_sign_with_ethers_and_the_node_relays(node: DevNode, w3: Web3, gov: Any) -> None:
    """The same through EIP-712: two of the three members sign with ethers, the node relays."""
    found_consortium(node, w3, gov)
    alice, bob = node.accounts[:2]
    summary = run_flow("gov_eip712.mjs", node.rpc_url, alice.key, env={"CONCLAVE_SECOND_KEY": bob.key})
    assert summary["state"] == ACCEPTED
    assert summary["refusedStatus"] == 400 and "is not a member" in summary["refusedReason"]
    relayer = w3.eth.get_transaction_by_block(w3.eth.block_number, 0)["from"]
    assert (
        relayer == httpx.get(node.rpc_url.rstrip("/") + "/node/status").json()["enclave"]["validatorAddress"]
    )


def test_changing_the_constitution_needs_its_higher_threshold(node: DevNode, w3: Web3, gov: Any) -> None:
    """Ordinary actions at one third, the constitution at two thirds, among three members."""
    found_consortium(node, w3, gov)
    alice, bob, _ = (account.address for account in node.accounts[:3])
    lenient = Constitution(
        name="Lenient",
        default_threshold=Threshold(1, 3, strict=False),
        thresholds={"set_constitution": TWO_THIRDS},
        voting_period=3600,
    )

    def propose_constitution() -> int:
        kind, args = encode_action(Action("set_constitution", {"constitution": lenient}))
        receipt = send(w3, gov.functions.propose([(kind, args)]), alice)
        (created,) = gov.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        return int(created["args"]["id"])

    pid = propose_constitution()
    send(w3, gov.functions.vote(pid, True), alice)
    assert proposal_state(gov, pid) == OPEN
    send(w3, gov.functions.vote(pid, True), bob)
    assert proposal_state(gov, pid) == ACCEPTED
    assert gov.functions.constitution().call()[1] == "Lenient"

    newcomer = node.accounts[7].address
    pid = propose(w3, gov, alice, "add_user", ["address", "bool"], [newcomer, False])
    send(w3, gov.functions.vote(pid, True), alice)
    assert proposal_state(gov, pid) == ACCEPTED and gov.functions.isUser(newcomer).call()  # one of three

    pid = propose_constitution()
    send(w3, gov.functions.vote(pid, True), alice)
    assert proposal_state(gov, pid) == OPEN  # one of three is not two thirds


def test_the_request_size_and_the_block_time_follow_governance(node: DevNode, w3: Web3, gov: Any) -> None:
    alice, bob = (account.address for account in node.accounts[:2])

    def configure(key: str, value: int) -> None:
        pid = propose(w3, gov, alice, "set_config", ["string", "uint256"], [key, value])
        send(w3, gov.functions.vote(pid, True), alice)
        assert proposal_state(gov, pid) == ACCEPTED

    large = {"jsonrpc": "2.0", "id": 1, "method": "web3_sha3", "params": ["0x" + "ab" * 3_000]}
    assert httpx.post(node.rpc_url, json=large).status_code == 200
    configure("max_request_bytes", 4_096)
    refused = httpx.post(node.rpc_url, json=large)
    assert refused.status_code == 413 and "at most 4096 bytes" in refused.json()["error"]["message"]

    configure("block_time_ms", 400)
    sealed = []
    for value in (1, 2, 3):
        receipt = wait_receipt(w3, w3.eth.send_transaction({"from": alice, "to": bob, "value": value}))
        sealed.append((receipt["blockNumber"], time.monotonic()))
    first = sealed[0][0]
    assert [number for number, _ in sealed] == [first, first + 1, first + 2]
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(sealed)]
    assert all(gap >= 0.35 for gap in gaps), gaps  # a block at most every 400 ms
