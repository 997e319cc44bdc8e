"""End-to-end: `conclave gov` proposes, votes, withdraws, lists and shows against a real node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

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
