"""Conclave's confidential transactions from web3.py: sign in, read as yourself, send privately.

A Conclave node shows confidential contracts and transactions only to their parties, so
it must know who is asking. You prove it with Sign-In with Ethereum (EIP-4361): the node
hands out a nonce, your key signs a sign-in message holding it, and the node answers a
token bound to your address. Send the token with every request (here: as an
``Authorization: Bearer`` header) and the node answers as it would answer you; without
one you see public data only. ::

    from eth_account import Account
    from conclave_client import send_private, sign_in, web3_for

    retailer = Account.from_key("0x…")
    token = sign_in("http://127.0.0.1:8545", retailer)
    w3 = web3_for("http://127.0.0.1:8545", token)

    # Deploy a contract confidential to the retailer and one distributor.
    tx = w3.eth.contract(abi=abi, bytecode=bytecode).constructor(distributor).build_transaction(
        {"from": retailer.address, "nonce": w3.eth.get_transaction_count(retailer.address, "pending")}
    )
    tx_hash = send_private(w3, retailer.sign_transaction(tx), [distributor])
    address = w3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"]

    # From now on ordinary transactions to the contract (any wallet, MetaMask included) are
    # confidential to its parties automatically: send them as usual.

Only the transaction's own sender may send it privately (the request must be signed in
as the sender), so nobody can widen who sees somebody else's transaction. Needs web3.py
(and the ``requests`` package it brings); nothing else. ``python conclave_client.py URL
KEY`` signs in and prints the token.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.types import RPCEndpoint

__all__ = [
    "ConclaveAuthError",
    "rpc_url_with_token",
    "send_private",
    "sign_in",
    "siwe_message",
    "web3_for",
]

DEFAULT_STATEMENT = "Sign in to the Conclave node to read what you are a party to."
SEND_PRIVATE = RPCEndpoint("conclave_sendRawPrivateTransaction")
TIMEOUT = 30


class ConclaveAuthError(Exception):
    """The node refused to sign us in (or answered something we cannot read)."""


def siwe_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain_id: int,
    nonce: str,
    issued_at: datetime | None = None,
    statement: str | None = DEFAULT_STATEMENT,
) -> str:
    """The EIP-4361 message a wallet signs to sign in (Version 1, the address checksummed)."""
    issued = (issued_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"{domain} wants you to sign in with your Ethereum account:", to_checksum_address(address), ""]
    if statement:
        lines += [statement, ""]
    lines += [
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {issued}",
    ]
    return "\n".join(lines)


def _base_url(url: str) -> str:
    """`url` without a trailing slash or an `/rpc/<token>` path: where `/auth/*` live."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected the node's http(s) URL, e.g. http://127.0.0.1:8545, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _chain_id(base: str, session: requests.Session) -> int:
    answer = session.post(
        base, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=TIMEOUT
    ).json()
    return int(answer["result"], 16)


def sign_in(
    url: str,
    account: LocalAccount,
    *,
    chain_id: int | None = None,
    statement: str | None = DEFAULT_STATEMENT,
    session: requests.Session | None = None,
) -> str:
    """Sign in to the node at `url` as `account`; return the bearer token.

    Asks ``GET /auth/nonce``, signs the EIP-4361 message with EIP-191 ``personal_sign``
    and posts it to ``/auth/login``. The domain is the URL's host:port and the URI the
    node's URL, as the node checks. `account` is anything with ``.address`` and
    ``.sign_message`` (an eth_account ``LocalAccount``). The token expires: sign in again
    when the node refuses it (JSON-RPC error 4100 or HTTP 401).
    """
    base = _base_url(url)
    http = session or requests.Session()
    try:
        nonce_answer = http.get(f"{base}/auth/nonce", timeout=TIMEOUT)
        nonce_answer.raise_for_status()
        nonce = nonce_answer.json()["nonce"]
        message = siwe_message(
            domain=urlsplit(base).netloc,
            address=account.address,
            uri=base,
            chain_id=_chain_id(base, http) if chain_id is None else chain_id,
            nonce=nonce,
            statement=statement,
        )
        signature = account.sign_message(encode_defunct(text=message)).signature
        login = http.post(
            f"{base}/auth/login",
            json={"message": message, "signature": "0x" + bytes(signature).hex()},
            timeout=TIMEOUT,
        )
        if login.status_code != 200:
            raise ConclaveAuthError(f"POST {base}/auth/login answered {login.status_code}: {login.text}")
        answer = login.json()
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise ConclaveAuthError(f"could not sign in at {base}: {exc}") from exc
    finally:
        if session is None:
            http.close()
    if to_checksum_address(answer.get("address", "0x" + "00" * 20)) != to_checksum_address(account.address):
        raise ConclaveAuthError(f"the node signed in {answer.get('address')}, not {account.address}")
    return str(answer["token"])


def rpc_url_with_token(url: str, token: str, *, websocket: bool = False) -> str:
    """The node's RPC URL with the token in its path (``http://host:port/rpc/<token>``), for
    tools that cannot set headers (MetaMask's custom network, WebSocket clients); with
    `websocket`, its ``ws://`` (or ``wss://``) twin."""
    base = _base_url(url)
    if websocket:
        base = "ws" + base[len("http") :]
    return f"{base}/rpc/{token}"


def web3_for(url: str, token: str | None, **request_kwargs: Any) -> Web3:
    """A web3.py client that asks the node as the signed-in account (token in the
    ``Authorization`` header); with `token` None, an anonymous client."""
    headers = dict(request_kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request_kwargs.setdefault("timeout", TIMEOUT)
    return Web3(Web3.HTTPProvider(_base_url(url), request_kwargs={"headers": headers, **request_kwargs}))


def send_private(w3: Web3, signed_raw: Any, private_for: Iterable[str]) -> HexBytes:
    """Send a signed transaction confidential to its sender and `private_for`; return its hash.

    `signed_raw` is the raw signed transaction (bytes or hex), or what
    ``Account.sign_transaction`` returns. `w3` must be signed in as the transaction's
    sender (``web3_for(url, token)``). A contract the transaction creates is confidential
    to the same parties, and so is every later transaction to it: send those with
    ``w3.eth.send_raw_transaction`` (or from any wallet) as usual.
    """
    raw = getattr(signed_raw, "raw_transaction", signed_raw)
    raw_hex = HexBytes(raw).to_0x_hex()
    parties = [to_checksum_address(address) for address in private_for]
    result = w3.manager.request_blocking(SEND_PRIVATE, [raw_hex, {"privateFor": parties}])
    return HexBytes(result)


if __name__ == "__main__":
    from eth_account import Account

    if len(sys.argv) != 3:
        sys.exit("usage: python conclave_client.py NODE_URL PRIVATE_KEY  (prints a token)")
    print(sign_in(sys.argv[1], Account.from_key(sys.argv[2])))
