"""Sign-In with Ethereum (EIP-4361) against a node, for tests and benchmarks.

`sign_in(rpc_url, key)` signs in as `conclave auth login` does (`gateway.auth_cli.sign_in`:
`/auth/nonce`, the EIP-4361 message signed with EIP-191, `/auth/login`) and returns the
bearer token.
"""

from __future__ import annotations

from eth_account import Account

from gateway.auth_cli import sign_in as login


def sign_in(rpc_url: str, key: str | bytes) -> str:
    """Sign in with `key` and return the node's bearer token."""
    return str(login(rpc_url, Account.from_key(key))["token"])
