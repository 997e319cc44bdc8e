"""Sign-In with Ethereum (EIP-4361) against a node, for tests and benchmarks.

`sign_in(rpc_url, key)` signs in as `conclave auth login` does (`gateway.auth_cli.sign_in`:
`/auth/nonce`, the EIP-4361 message signed with EIP-191, `/auth/login`) and returns the
bearer token; `enclave_token(enclave, account)` does the same with an enclave directly.
"""

from __future__ import annotations

import time

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from enclave.auth import SiweMessage, rfc3339
from enclave.interface import EnclaveAPI
from gateway.auth_cli import sign_in as login


def sign_in(rpc_url: str, key: str | bytes) -> str:
    """Sign in with `key` and return the node's bearer token."""
    return str(login(rpc_url, Account.from_key(key))["token"])


def enclave_token(enclave: EnclaveAPI, account: LocalAccount) -> str:
    """A login token of `account`, asked of `enclave` directly (no node around it)."""
    domain = "127.0.0.1:8545"
    text = SiweMessage(
        domain,
        account.address,
        f"http://{domain}",
        enclave.params.chain_id,
        enclave.auth_challenge(),
        rfc3339(time.time()),
    ).text()
    signature = bytes(account.sign_message(encode_defunct(text=text)).signature)
    return enclave.auth_login(text, signature, domain).token
