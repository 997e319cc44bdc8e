"""Disaster recovery end to end (docs/recovery.md), real processes and real database files:
a 3-member, 4-validator network (`conclave net up`) with a confidential contract; every node
destroyed (their enclave directories with them), only node 0's ledger file kept; a new node
started on it in recovery mode. With one member's share the ledger stays sealed; with two of
three the enclave restores the ledger secrets, verifies the ledger and the node starts: the
contract's parties read it again, an outsider still does not."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from tests.support.local_network import LocalNetwork, conclave, free_base_port, start_node, stop_node
from tests.support.sign_in import sign_in

VALIDATORS = 4
REPOSITORY = Path(__file__).resolve().parents[2]
# A contract whose code answers 42: init code (12 bytes) then the runtime code (10 bytes).
RUNTIME = "602a60005260206000f3"
INIT_CODE = "0x600a600c600039600a6000f3" + RUNTIME


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.TransportError, KeyError, RuntimeError):
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def rpc(url: str, method: str, *params: Any, token: str | None = None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    answer = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, headers=headers
    ).json()
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def cli_json(*args: str) -> dict[str, Any]:
    done = conclave(*args, "--json")
    assert done.returncode == 0, f"conclave {' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    network = LocalNetwork(tmp_path_factory.mktemp("recovery") / "network", VALIDATORS)
    try:
        yield network
    finally:
        network.down()


def test_a_network_lost_entirely_is_recovered_from_its_ledger_with_two_of_three_shares(
    net: LocalNetwork, tmp_path: Path
) -> None:
    url = net.urls[0]
    keys = [account["privateKey"] for account in net.accounts]
    alice, bob, carol, sender, party = (Account.from_key(key) for key in keys[:5])

    # Three members: Alice (the genesis member) adds Bob, then both add Carol.
    first = cli_json("gov", "propose", "add_member", bob.address, "Bob", "", "--rpc", url, "--key", keys[0])
    assert (
        cli_json("gov", "vote", str(first["id"]), "yes", "--rpc", url, "--key", keys[0])["state"]
        == "accepted"
    )
    second = cli_json(
        "gov", "propose", "add_member", carol.address, "Carol", "", "--rpc", url, "--key", keys[0]
    )
    cli_json("gov", "vote", str(second["id"]), "yes", "--rpc", url, "--key", keys[0])
    assert (
        cli_json("gov", "vote", str(second["id"]), "yes", "--rpc", url, "--key", keys[1])["state"]
        == "accepted"
    )
    status = cli_json("recovery", "status", "--rpc", url)
    assert status["issuedAt"] is None and "registered a recovery key" in status["problem"]

    # Each registers its recovery key; the validators issue shares, 2 of 3 (a majority).
    for key in keys[:3]:
        cli_json("recovery", "register-key", "--rpc", url, "--key", key)

    def issued_to_three() -> dict[str, Any] | None:
        found = cli_json("recovery", "status", "--rpc", url)
        return found if len(found["holders"]) == 3 else None

    status = wait_for(issued_to_three, 30, "recovery shares for three members")
    assert status["threshold"] == 2 and not status["sealed"]
    assert cli_json("recovery", "share", "--rpc", url, "--key", keys[2])["share"].startswith("0x")

    # A confidential contract, of `sender` and `party`.
    token = sign_in(url, keys[3])
    signed = sender.sign_transaction(
        {
            "type": 2,
            "chainId": int(rpc(url, "eth_chainId"), 16),
            "nonce": int(rpc(url, "eth_getTransactionCount", sender.address, "pending"), 16),
            "data": INIT_CODE,
            "value": 0,
            "gas": 200_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    tx_hash = rpc(
        url,
        "conclave_sendRawPrivateTransaction",
        signed.raw_transaction.to_0x_hex(),
        {"privateFor": [party.address]},
        token=token,
    )
    receipt = wait_for(lambda: rpc(url, "eth_getTransactionReceipt", tx_hash, token=token), 30, "the receipt")
    contract = receipt["contractAddress"]
    assert rpc(url, "eth_getCode", contract, "latest", token=token) == "0x" + RUNTIME
    assert rpc(url, "eth_getTransactionByHash", tx_hash) is None

    # Every node lost: stopped, their enclave directories (the only copies of the ledger
    # secrets) deleted. Node 0's ledger file and the genesis document survive.
    net.down()
    survivors = tmp_path / "recovered"
    survivors.mkdir()
    for name in os.listdir(net.folder / "node0"):
        if name.startswith("ledger.sqlite"):
            shutil.copy2(net.folder / "node0" / name, survivors / name)
    shutil.copy2(net.folder / "genesis.json", survivors / "genesis.json")
    platform_root = tmp_path / "attestation-root.bin"  # the platform vendor's, not lost with the nodes
    shutil.copy2(net.folder / "attestation-root.bin", platform_root)
    shutil.rmtree(net.folder)
    made = conclave("node", "keys", "--data-dir", str(survivors), "--attestation-root", str(platform_root))
    assert made.returncode == 0, made.stderr

    base = free_base_port(1)
    rpc_url = f"http://127.0.0.1:{base}"
    (survivors / "node.toml").write_text(
        f'data_dir = "."\ngenesis = "genesis.json"\n[rpc]\nport = {base}\n[p2p]\nport = {base + 100}\n'
    )
    log = open(survivors / "node.log", "w")  # noqa: SIM115 - closed at the end
    node = start_node(survivors / "node.toml", "--recover", log=log)
    try:
        status = wait_for(lambda: httpx.get(f"{rpc_url}/recovery/status").json(), 60, "recovery mode")
        assert status["sealed"] and status["threshold"] == 2 and len(status["holders"]) == 3

        # One share of two: still sealed, nothing but recovery is served.
        genesis = str(survivors / "genesis.json")
        submit = ("recovery", "submit-share", "--rpc", rpc_url, "--genesis", genesis)
        one = cli_json(*submit, "--key", keys[2])
        assert one["sealed"] and one["submitted"] == [carol.address]
        assert httpx.get(f"{rpc_url}/node/status").json()["status"] == "recovering"
        assert (
            httpx.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).status_code >= 400
        )
        refused = conclave(*submit, "--key", keys[5])
        assert refused.returncode == 1 and "holds no share" in refused.stderr

        # The second share restores the secrets; the ledger verifies and the node starts.
        two = cli_json(*submit, "--key", keys[0])
        assert not two["sealed"]
        wait_for(lambda: rpc(rpc_url, "eth_chainId"), 60, "the recovered node to serve JSON-RPC")

        party_token = sign_in(rpc_url, keys[4])
        seen = rpc(rpc_url, "eth_getTransactionByHash", tx_hash, token=party_token)
        assert seen is not None and seen["input"] == INIT_CODE
        assert rpc(rpc_url, "eth_getCode", contract, "latest", token=party_token) == "0x" + RUNTIME
        assert rpc(rpc_url, "eth_getTransactionByHash", tx_hash) is None
        assert rpc(rpc_url, "eth_getCode", contract, "latest") == "0x"
        assert not httpx.get(f"{rpc_url}/recovery/status").json()["sealed"]

        # Governance still names the lost validators: nothing is ordered until the members
        # reopen the network with this node as its validator (2 of 3 approvals).
        head = int(rpc(rpc_url, "eth_blockNumber"), 16)
        lost = rpc(rpc_url, "qbft_getValidatorsByBlockNumber", "latest")
        assert len(lost) == VALIDATORS
        approve = ("recovery", "approve-reopening", "--rpc", rpc_url, "--genesis", genesis)
        first = cli_json(*approve, "--key", keys[1])
        assert not first["reopened"] and first["approvals"] == [bob.address]
        assert "1 of the 2" in first["problem"] and first["parentNumber"] == head
        outsider = conclave(*approve, "--key", keys[5])
        assert outsider.returncode == 1 and "not a member" in outsider.stderr
        reopened = cli_json(*approve, "--key", keys[2])
        assert reopened["reopened"] and reopened["block"] == head + 1
        node_address = httpx.get(f"{rpc_url}/node/status").json()["enclave"]["validatorAddress"]
        assert rpc(rpc_url, "qbft_getValidatorsByBlockNumber", "latest") == [node_address]
        again = conclave(*approve, "--key", keys[0])
        assert again.returncode == 1 and "the network is open" in again.stderr

        # The network orders blocks again: a public transfer is committed.
        transfer = party.sign_transaction(
            {
                "type": 2,
                "chainId": int(rpc(rpc_url, "eth_chainId"), 16),
                "nonce": int(rpc(rpc_url, "eth_getTransactionCount", party.address, "pending"), 16),
                "to": sender.address,
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        sent = rpc(rpc_url, "eth_sendRawTransaction", transfer.raw_transaction.to_0x_hex())
        mined = wait_for(lambda: rpc(rpc_url, "eth_getTransactionReceipt", sent), 30, "a block, reopened")
        assert mined["status"] == "0x1" and int(mined["blockNumber"], 16) > head + 1
    finally:
        stop_node(node)
        log.close()
    verified = conclave("ledger", "verify", "--data-dir", str(survivors))
    assert verified.returncode == 0, verified.stdout + verified.stderr
