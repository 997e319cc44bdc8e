"""End-to-end: Sign-In with Ethereum against a real `conclave dev` node.

A reader signs an EIP-4361 message with eth_account, trades it for a token at
`/auth/login`, and uses the token with web3.py as a bearer header and inside the RPC URL,
and over WebSocket; refused tokens answer 401 (WebSocket: close 1008) before anything
else, and `conclave auth login` does the same from the command line; signing out
(`conclave auth logout`) refuses every token of the account.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import websockets
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3

from enclave.auth import SiweMessage, rfc3339
from tests.e2e.chain_helpers import run_conclave
from tests.support.devnode import DevNode, start_dev_node

CHAIN_ID_REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}


def signed_message(node: DevNode, account: LocalAccount, **changes: Any) -> tuple[str, str]:
    """An EIP-4361 message over a fresh nonce of `node`, and its signature in hex."""
    base = node.rpc_url.rstrip("/")
    fields: dict[str, Any] = {
        "domain": urlsplit(base).netloc,
        "address": account.address,
        "uri": base,
        "chain_id": node.chain_id,
        "nonce": httpx.get(f"{base}/auth/nonce", timeout=10).json()["nonce"],
        "issued_at": rfc3339(time.time()),
        "statement": "Sign in to read confidential data.",
    }
    fields.update(changes)
    text = SiweMessage(**fields).text()
    return text, "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()


def sign_in(node: DevNode, account: LocalAccount, **changes: Any) -> httpx.Response:
    message, signature = signed_message(node, account, **changes)
    return httpx.post(
        node.rpc_url.rstrip("/") + "/auth/login",
        json={"message": message, "signature": signature},
        timeout=10,
    )


@pytest.fixture(scope="module")
def reader() -> LocalAccount:
    return Account.create()


@pytest.fixture(scope="module")
def token(node: DevNode, reader: LocalAccount) -> str:
    answer = sign_in(node, reader)
    assert answer.status_code == 200, answer.text
    session = answer.json()
    assert session["address"] == reader.address
    assert time.time() + 23 * 3600 < session["expiresAt"] <= time.time() + 24 * 3600 + 5
    assert answer.headers["cache-control"] == "no-store"
    return str(session["token"])


def test_web3_sends_the_token_as_a_bearer_header(node: DevNode, token: str) -> None:
    w3 = Web3(
        Web3.HTTPProvider(node.rpc_url, request_kwargs={"headers": {"Authorization": f"Bearer {token}"}})
    )
    assert w3.eth.chain_id == node.chain_id
    assert w3.eth.get_balance(node.accounts[0].address) > 0


def test_web3_sends_the_token_in_the_rpc_url(node: DevNode, token: str) -> None:
    w3 = Web3(Web3.HTTPProvider(f"{node.rpc_url.rstrip('/')}/rpc/{token}"))
    assert w3.eth.chain_id == node.chain_id
    assert w3.eth.block_number >= 0
    # The same token in both places is fine.
    both = httpx.post(
        f"{node.rpc_url.rstrip('/')}/rpc/{token}",
        json=CHAIN_ID_REQUEST,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert both.status_code == 200 and both.json()["result"] == hex(node.chain_id)


def test_a_bad_token_is_refused_with_401(node: DevNode, token: str) -> None:
    base = node.rpc_url.rstrip("/")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    refusals = [
        httpx.post(base, json=CHAIN_ID_REQUEST, headers={"Authorization": f"Bearer {tampered}"}, timeout=10),
        httpx.post(f"{base}/rpc/{tampered}", json=CHAIN_ID_REQUEST, timeout=10),
        httpx.post(f"{base}/rpc/not-a-token", json=CHAIN_ID_REQUEST, timeout=10),
        httpx.post(base, json=CHAIN_ID_REQUEST, headers={"Authorization": f"Basic {token}"}, timeout=10),
    ]
    for refused in refusals:
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
        error = refused.json()["error"]
        assert error["code"] == 4100 and ("/auth/login" in error["message"]), error
    w3 = Web3(Web3.HTTPProvider(f"{base}/rpc/{tampered}"))
    with pytest.raises(requests.HTTPError, match="401"):
        w3.eth.chain_id  # noqa: B018 - the request is the point


def test_two_different_tokens_are_refused(node: DevNode, reader: LocalAccount, token: str) -> None:
    other = sign_in(node, reader).json()["token"]
    answer = httpx.post(
        f"{node.rpc_url.rstrip('/')}/rpc/{token}",
        json=CHAIN_ID_REQUEST,
        headers={"Authorization": f"Bearer {other}"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert "two different login tokens" in answer.json()["error"]["message"]


def test_refused_logins_answer_401_with_the_reason(node: DevNode, reader: LocalAccount) -> None:
    message, signature = signed_message(node, reader)
    login = node.rpc_url.rstrip("/") + "/auth/login"
    assert httpx.post(login, json={"message": message, "signature": signature}, timeout=10).status_code == 200
    replayed = httpx.post(login, json={"message": message, "signature": signature}, timeout=10)
    assert replayed.status_code == 401 and "used already" in replayed.json()["detail"]

    elsewhere = sign_in(node, reader, domain="evil.example")
    assert elsewhere.status_code == 401 and "sign a message whose domain is" in elsewhere.json()["detail"]
    other_chain = sign_in(node, reader, chain_id=node.chain_id + 1)
    assert other_chain.status_code == 401 and "chain id" in other_chain.json()["detail"]


def test_a_websocket_connects_with_the_token(node: DevNode, token: str) -> None:
    ws_base = node.rpc_url.replace("http://", "ws://").rstrip("/")

    async def ask(url: str, headers: dict[str, str] | None = None) -> Any:
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps(CHAIN_ID_REQUEST))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))["result"]

    async def refused(url: str) -> websockets.ConnectionClosed:
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            return closed.value

    assert asyncio.run(ask(f"{ws_base}/rpc/{token}")) == hex(node.chain_id)
    assert asyncio.run(ask(f"{ws_base}/ws/{token}")) == hex(node.chain_id)
    assert asyncio.run(ask(f"{ws_base}/ws", {"Authorization": f"Bearer {token}"})) == hex(node.chain_id)
    closed = asyncio.run(refused(f"{ws_base}/rpc/{token}x"))
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    assert "sign in" in closed.rcvd.reason


def test_the_cli_signs_in(node: DevNode) -> None:
    key = node.accounts[3].key
    run = run_conclave("auth", "login", "--rpc", node.rpc_url, "--key", key, "--json", "--expires-in", "600")
    assert run.returncode == 0, run.stdout + run.stderr
    session = json.loads(run.stdout)
    assert session["address"] == node.accounts[3].address
    assert session["expiresAt"] <= time.time() + 601
    w3 = Web3(Web3.HTTPProvider(session["rpcUrl"]))
    assert w3.eth.chain_id == node.chain_id

    text = run_conclave("auth", "login", "--rpc", node.rpc_url, "--key", key)
    assert text.returncode == 0 and "/rpc/ey" in text.stdout and "signed in as" in text.stdout

    unreachable = run_conclave("auth", "login", "--rpc", "http://127.0.0.1:9", "--key", key)
    assert unreachable.returncode == 2 and "no node answers" in unreachable.stderr


def test_signing_out_refuses_the_accounts_tokens_everywhere(node: DevNode) -> None:
    base, account = node.rpc_url.rstrip("/"), Account.create()
    phone, laptop = (sign_in(node, account).json()["token"] for _ in range(2))
    web3_on_laptop = Web3(Web3.HTTPProvider(f"{base}/rpc/{laptop}"))
    assert web3_on_laptop.eth.chain_id == node.chain_id
    run = run_conclave("auth", "logout", "--rpc", node.rpc_url, "--token", phone, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["address"] == account.address
    for token in (phone, laptop):
        refused = httpx.post(
            base, json=CHAIN_ID_REQUEST, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert refused.status_code == 401 and "signed out" in refused.json()["error"]["message"]
    with pytest.raises(requests.HTTPError, match="401"):
        web3_on_laptop.eth.chain_id  # noqa: B018 - the request is the point
    again = httpx.post(f"{base}/auth/logout", headers={"Authorization": f"Bearer {phone}"}, timeout=10)
    assert again.status_code == 401 and "signed out" in again.json()["detail"]
    assert httpx.post(f"{base}/auth/logout", timeout=10).status_code == 401
    fresh = sign_in(node, account).json()["token"]
    assert Web3(Web3.HTTPProvider(f"{base}/rpc/{fresh}")).eth.chain_id == node.chain_id


def test_tokens_outlive_an_enclave_restart() -> None:
    node = start_dev_node("--ephemeral")
    try:
        token = sign_in(node, Account.create()).json()["token"]
        status_url = node.rpc_url.rstrip("/") + "/node/status"
        enclave = httpx.get(status_url, timeout=10).json()["enclave"]
        os.kill(enclave["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while True:
            restarted = httpx.get(status_url, timeout=10).json()["enclave"]
            if restarted["alive"] and restarted["restarts"] >= 1:
                break
            assert time.monotonic() < deadline, "the node did not restart its enclave"
            time.sleep(0.1)
        again = httpx.post(
            node.rpc_url, json=CHAIN_ID_REQUEST, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert again.status_code == 200, again.text
    finally:
        node.stop()
