"""End-to-end: receipts anyone can verify, from a real `conclave dev` process.

A client gets a transaction's receipt with web3.py (conclave_getTransactionProof), over
REST (`GET /receipts/{hash}`) or with `conclave receipt get`, and verifies it offline with
`conclave receipt verify`. A confidential transaction's parties get a receipt that
verifies; an outsider, anonymous or signed in, gets exactly what an unknown hash gets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3

from tests.e2e.chain_helpers import Signer, connect, fresh_account, run_conclave, wait_receipt
from tests.support.artifacts import load_artifact
from tests.support.devnode import DevNode, start_dev_node
from tests.support.sign_in import sign_in

VAULT = load_artifact("Vault")
SECRET = "purchase order 7731: 40 pallets of widgets at 12.50"


@pytest.fixture(scope="module")
def node() -> Iterator[DevNode]:
    started = start_dev_node("--ephemeral")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def validators(node: DevNode) -> str:
    """The genesis validators, as a verifier who knows the network would name them."""
    return ",".join(node.result("qbft_getValidatorsByBlockNumber", ["0x0"]))


def rpc(node: DevNode, method: str, params: list[Any], token: str | None = None) -> dict[str, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(node.rpc_url, json=payload, headers=headers, timeout=30).json()  # type: ignore[no-any-return]


def rest(node: DevNode, tx_hash: str, token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{node.rpc_url.rstrip('/')}/receipts/{tx_hash}", headers=headers, timeout=30)


def verify_file(path: Path, document: Any, validators: str, *extra: str) -> tuple[int, str]:
    path.write_text(json.dumps(document))
    run = run_conclave("receipt", "verify", str(path), "--validators", validators, *extra)
    return run.returncode, run.stdout


def test_a_receipt_from_web3_verifies_offline(node: DevNode, validators: str, tmp_path: Path) -> None:
    w3 = connect(node)
    alice = Signer(w3, node.accounts[0].key)
    to = fresh_account().address
    receipt = alice.transact(to=to, value=5, gas=21_000)
    tx_hash = receipt["transactionHash"].to_0x_hex()
    document = w3.provider.make_request("conclave_getTransactionProof", [tx_hash])["result"]  # type: ignore[arg-type]
    assert document["blockHash"] == receipt["blockHash"].to_0x_hex()

    code, shown = verify_file(tmp_path / "receipt.json", document, validators)
    assert code == 0 and shown.startswith(f"valid: transaction {tx_hash}"), shown
    code, shown = verify_file(tmp_path / "receipt.json", document, validators, "--json")
    verified = json.loads(shown)
    assert code == 0 and verified["to"] == to and verified["value"] == "0x5"
    assert verified["from"] == alice.address and verified["blockNumber"] == hex(receipt["blockNumber"])

    code, shown = verify_file(tmp_path / "receipt.json", document, fresh_account().address)
    assert code == 1 and shown.startswith("invalid:") and "quorum" in shown
    tampered = {**document, "header": document["header"][:-2] + "ff"}
    code, shown = verify_file(tmp_path / "receipt.json", tampered, validators)
    assert code == 1 and "header" in shown

    assert rest(node, tx_hash).json() == document
    fetched = run_conclave("receipt", "get", tx_hash, "--rpc", node.rpc_url)
    assert fetched.returncode == 0 and json.loads(fetched.stdout) == document


def test_an_unknown_hash_has_no_receipt(node: DevNode) -> None:
    unknown = "0x" + os.urandom(32).hex()
    assert rpc(node, "conclave_getTransactionProof", [unknown])["result"] is None
    answer = rest(node, unknown)
    assert answer.status_code == 404 and answer.json() == {"detail": f"transaction {unknown} not found"}
    assert run_conclave("receipt", "get", unknown, "--rpc", node.rpc_url).returncode == 1
    assert rest(node, "0x1234").status_code == 422


def _private_deploy(node: DevNode, w3: Web3, signer: Signer, token: str, party: str) -> str:
    factory = w3.eth.contract(abi=VAULT["abi"], bytecode=VAULT["bytecode"])
    signed = signer.sign(data=factory.constructor(SECRET).data_in_transaction, gas=2_000_000)
    answer = rpc(
        node,
        "conclave_sendRawPrivateTransaction",
        ["0x" + signed.raw_transaction.hex(), {"privateFor": [party]}],
        token,
    )
    assert "error" not in answer, answer
    return str(answer["result"])


def test_a_confidential_receipt_is_for_its_parties_and_verifies_anywhere(
    node: DevNode, validators: str, tmp_path: Path
) -> None:
    w3 = connect(node)
    retailer, partner, outsider = (Signer(w3, account.key) for account in node.accounts[1:4])
    tokens = {
        name: sign_in(node.rpc_url, signer.account.key.hex())
        for name, signer in (("retailer", retailer), ("partner", partner), ("outsider", outsider))
    }
    creation = _private_deploy(node, w3, retailer, tokens["retailer"], partner.address)
    party_w3 = Web3(
        Web3.HTTPProvider(
            node.rpc_url, request_kwargs={"headers": {"Authorization": f"Bearer {tokens['partner']}"}}
        )
    )
    assert wait_receipt(party_w3, creation)["status"] == 1

    for who in ("retailer", "partner"):
        document = rpc(node, "conclave_getTransactionProof", [creation], tokens[who])["result"]
        assert document is not None and SECRET.encode().hex() in document["transaction"]
        code, shown = verify_file(tmp_path / f"{who}.json", document, validators, "--json")
        assert code == 0 and json.loads(shown)["from"] == retailer.address
        assert rest(node, creation, tokens[who]).json() == document
    fetched = run_conclave("receipt", "get", creation, "--rpc", node.rpc_url, "--token", tokens["partner"])
    assert fetched.returncode == 0 and json.loads(fetched.stdout)["transactionHash"] == creation

    unknown = "0x" + os.urandom(32).hex()
    for token in (None, tokens["outsider"]):
        hidden = rpc(node, "conclave_getTransactionProof", [creation], token)
        assert hidden == rpc(node, "conclave_getTransactionProof", [unknown], token)
        assert hidden["result"] is None
        refused = rest(node, creation, token)
        like_unknown = rest(node, unknown, token)
        assert refused.status_code == like_unknown.status_code == 404
        assert refused.json()["detail"].replace(creation, unknown) == like_unknown.json()["detail"]
    assert run_conclave("receipt", "get", creation, "--rpc", node.rpc_url).returncode == 1

    refused_token = rest(node, creation, tokens["partner"] + "x")
    assert refused_token.status_code == 401 and refused_token.headers["WWW-Authenticate"].startswith("Bearer")
