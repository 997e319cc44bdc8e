"""End-to-end: `conclave gov` proposes, votes, withdraws, lists and shows against a real node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from web3 import Web3

from governance.system_contract import ABI, GOVERNANCE_ADDRESS
from tests.e2e.chain_helpers import run_conclave
from tests.support.devnode import DevNode, start_dev_node


@pytest.fixture(scope="module")
def node() -> Iterator[DevNode]:
    node = start_dev_node("--ephemeral")
    yield node
    node.stop()


def gov(node: DevNode, *args: str) -> dict:  # type: ignore[type-arg]
    run = run_conclave("gov", *args, "--rpc", node.rpc_url, "--json", timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def test_members_govern_from_the_command_line(node: DevNode, tmp_path: Path) -> None:
    alice, bob, carol = node.accounts[:3]
    created = gov(node, "propose", "add_member", bob.address, "Bob", "--key", alice.key)
    assert gov(node, "vote", str(created["id"]), "yes", "--key", alice.key)["state"] == "accepted"

    # Bob signs from a keystore file.
    keystore, password = tmp_path / "bob.json", tmp_path / "password"
    keystore.write_text(json.dumps(Account.encrypt(bob.key, "correct horse")))
    password.write_text("correct horse\n")
    bob_key = ["--key-file", str(keystore), "--password-file", str(password)]
    constitution = tmp_path / "constitution.json"
    constitution.write_text(
        json.dumps({"name": "Acme", "votingPeriod": 3600, "thresholds": {"add_user": "at least 1/1"}})
    )
    proposed = gov(node, "propose", "set_constitution", str(constitution), *bob_key)
    gov(node, "vote", str(proposed["id"]), "yes", *bob_key)
    assert gov(node, "vote", str(proposed["id"]), "yes", "--key", alice.key)["state"] == "accepted"

    user = gov(node, "propose", "add_user", carol.address, "true", "--key", alice.key)
    gov(node, "vote", str(user["id"]), "yes", "--key", alice.key)
    shown = gov(node, "show", str(user["id"]))
    assert shown["state"] == "open" and shown["ballots"] == {alice.address: "yes"}
    assert shown["actions"] == [
        {"kind": "add_user", "args": {"address": carol.address.lower(), "deploy": True}}
    ]
    assert gov(node, "withdraw", str(user["id"]), "--key", alice.key)["state"] == "withdrawn"

    listed = gov(node, "list")["proposals"]
    assert [p["state"] for p in listed] == ["accepted", "accepted", "withdrawn"]

    text = run_conclave("gov", "show", "2", "--rpc", node.rpc_url)
    assert text.returncode == 0 and "set_constitution" in text.stdout and "accepted" in text.stdout


def test_refusals_say_why(node: DevNode) -> None:
    outsider = node.accounts[9]
    refused = run_conclave(
        "gov", "propose", "add_user", outsider.address, "--key", outsider.key, "--rpc", node.rpc_url
    )
    assert refused.returncode == 1 and "is not a member" in refused.stderr
    unknown = run_conclave("gov", "propose", "mint_money", "--key", outsider.key, "--rpc", node.rpc_url)
    assert unknown.returncode == 1 and "unknown action 'mint_money'" in unknown.stderr
    usage = run_conclave("gov", "propose", "add_member", "--key", outsider.key, "--rpc", node.rpc_url)
    assert (
        usage.returncode == 1
        and "usage: conclave gov propose add_member address name [metadata]" in usage.stderr
    )
    keyless = run_conclave("gov", "vote", "1", "yes", "--rpc", node.rpc_url)
    assert keyless.returncode == 1 and "--key" in keyless.stderr
    nowhere = run_conclave("gov", "list", "--rpc", "http://127.0.0.1:9")
    assert nowhere.returncode == 2 and "no node answers" in nowhere.stderr
    missing = run_conclave("gov", "show", "99", "--rpc", node.rpc_url)
    assert missing.returncode == 1 and "no proposal 99" in missing.stderr


def test_init_writes_a_consortium_that_a_dev_node_starts(tmp_path: Path) -> None:
    """Three founding members, a permissioned network with one user, the members' own
    constitution: `conclave init` writes it and `conclave dev --genesis` starts it."""
    members = [Account.create() for _ in range(3)]
    user, outsider = Account.create(), Account.create()
    constitution = tmp_path / "constitution.json"
    constitution.write_text(json.dumps({"name": "Acme purchasing", "defaultThreshold": "at least 2/3"}))
    genesis = tmp_path / "genesis.json"
    args = [f"--member={m.address}:Member {i}" for i, m in enumerate(members)]
    fund = [f"--fund={a.address}:10" for a in (*members, user, outsider)]
    written = run_conclave(
        "init",
        *args,
        "--user",
        user.address,
        "--permissioned",
        "--constitution",
        str(constitution),
        "--chain-id",
        "4242",
        *fund,
        "--out",
        str(genesis),
    )
    assert written.returncode == 0 and "3 members, 1 users" in written.stdout, written.stderr
    again = run_conclave("init", *args, "--out", str(genesis))
    assert again.returncode == 1 and "--force" in again.stderr

    node = start_dev_node("--ephemeral", "--genesis", str(genesis))
    try:
        assert node.result("eth_chainId") == hex(4242)
        listed = gov(node, "list")
        assert listed == {"proposals": []}
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        contract = w3.eth.contract(address=to_checksum_address(GOVERNANCE_ADDRESS), abi=ABI)
        assert sorted(contract.functions.members().call()) == sorted(m.address for m in members)
        assert contract.functions.constitution().call()[1] == "Acme purchasing"

        def transfer(account: Any) -> dict:  # type: ignore[type-arg]
            raw = account.sign_transaction(
                {
                    "to": members[0].address,
                    "value": 1,
                    "gas": 21_000,
                    "gasPrice": 10**10,
                    "nonce": 0,
                    "chainId": 4242,
                }
            ).raw_transaction
            return node.rpc("eth_sendRawTransaction", ["0x" + raw.hex()])

        assert "result" in transfer(user)
        refused = transfer(outsider)["error"]
        assert refused["code"] == -32007 and "not a user" in refused["message"]
    finally:
        node.stop()
