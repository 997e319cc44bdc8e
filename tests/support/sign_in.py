"""Sign-In with Ethereum (EIP-4361) against a node, as a wallet does it, for tests.

`sign_in(rpc_url, key)` asks `/auth/nonce`, signs the EIP-4361 message with the key
(EIP-191 personal_sign) and posts it to `/auth/login`; it returns the bearer token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct


def sign_in_message(
    rpc_url: str, address: str, chain_id: int, nonce: str, issued_at: datetime | None = None
) -> str:
    """The EIP-4361 message a wallet shows for signing in to the node at `rpc_url`."""
    parts = urlsplit(rpc_url)
    issued = (issued_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{parts.netloc} wants you to sign in with your Ethereum account:\n"
        f"{address}\n\n"
        "Sign in to read confidential data.\n\n"
        f"URI: {parts.scheme}://{parts.netloc}\n"
        "Version: 1\n"
        f"Chain ID: {chain_id}\n"
        f"Nonce: {nonce}\n"
        f"Issued At: {issued}"
    )


def sign_in(rpc_url: str, key: str, chain_id: int) -> str:
    """Sign in with `key` and return the node's bearer token."""
    base = rpc_url.rstrip("/")
    account = Account.from_key(key)
    with httpx.Client(timeout=30) as client:
        nonce = client.get(f"{base}/auth/nonce").raise_for_status().json()["nonce"]
        message = sign_in_message(rpc_url, account.address, chain_id, nonce)
        signature = account.sign_message(encode_defunct(text=message)).signature
        answer = client.post(
            f"{base}/auth/login", json={"message": message, "signature": "0x" + signature.hex()}
        )
    answer.raise_for_status()
    return str(answer.json()["token"])
