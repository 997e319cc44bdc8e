"""`conclave auth login|logout`: sign in to a node with Sign-In with Ethereum (EIP-4361),
and sign out everywhere.

It asks the node for a nonce (`GET /auth/nonce`), signs an EIP-4361 message with the
account's key (`--key`, `--key-file`, or the CONCLAVE_KEY environment variable), trades it
for a login token (`POST /auth/login`) and prints the token, to send as
`Authorization: Bearer <token>`, and the URL `/rpc/<token>` for wallets that cannot set
headers. The message's domain is the host and port of `--rpc`, which is what the node
compares it with (the Host header of the request).

`conclave auth logout --token TOKEN` (`POST /auth/logout`) makes the node refuse every token
issued so far to that token's address: on a lost device, or after a token leaked.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .cli_keys import CommandError, add_key_arguments, add_node_command, load_account

DEFAULT_STATEMENT = "Sign in to read confidential data."
DEFAULT_PORTS = {"http": 80, "https": 443}

AUTH_EPILOG = """\
examples:
  conclave auth login --key 0x…                       sign in to http://127.0.0.1:8545
  conclave auth login --key-file k.json --rpc https://node.example.com
  conclave auth login --key 0x… --expires-in 3600 --json

Use the token with any client: web3.py
  Web3(Web3.HTTPProvider(URL, request_kwargs={"headers": {"Authorization": "Bearer " + token}}))
or give wallets that cannot set headers (MetaMask) the printed RPC URL. A token lasts 24
hours at most; sign in again when the node answers 401. To refuse every token of an
account at once (a lost device, a leaked token):
  conclave auth logout --token TOKEN --rpc https://node.example.com
"""


def add_auth_commands(commands: Any) -> None:
    auth = commands.add_parser(
        "auth",
        help="sign in to a node (EIP-4361) to read confidential data",
        description="Sign-In with Ethereum: login tokens for reading confidential data.",
    )
    actions = auth.add_subparsers(dest="auth_command", metavar="ACTION", required=True)

    def action(name: str, help: str, description: str) -> argparse.ArgumentParser:
        return add_node_command(actions, name, help, description=description, epilog=AUTH_EPILOG)

    login = action(
        "login",
        "sign in with an account's key and print the login token",
        "Sign in with an account's key (EIP-4361) and print the login token.",
    )
    add_key_arguments(login, "the account's")
    login.add_argument(
        "--expires-in",
        type=_seconds,
        help="make the token expire after this many seconds (default: the node's 24 hours)",
    )
    login.add_argument("--statement", default=DEFAULT_STATEMENT, help="the message's statement line")
    login.set_defaults(run=run_login)
    logout = action(
        "logout",
        "sign out everywhere: the node refuses the account's tokens issued so far",
        "Sign out everywhere: the node refuses every token issued so far to the token's account.",
    )
    logout.add_argument("--token", required=True, help="a login token of the account to sign out")
    logout.set_defaults(run=run_logout)


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def domain_of(rpc_url: str) -> str:
    """The host (and port, unless the scheme's default) a request to `rpc_url` names in its
    Host header: the domain the sign-in message must carry."""
    parts = urlsplit(rpc_url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise CommandError(f"--rpc must be an http:// or https:// URL, got {rpc_url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:
        raise CommandError(f"--rpc has an invalid port: {rpc_url!r}") from None
    return host if port is None or port == DEFAULT_PORTS[parts.scheme] else f"{host}:{port}"


def _http(url: str, body: Any = None, token: str | None = None) -> Any:
    """GET `url`, or POST `body` as JSON (with `token` as the bearer); the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the user's node URL
        return json.load(response)


def sign_in(
    rpc: str, account: Any, *, expires_in: int | None = None, statement: str | None = None
) -> dict[str, Any]:
    """Sign in to the node at `rpc` as `account` (an eth_account account): /auth/login's answer."""
    from eth_account.messages import encode_defunct

    from enclave.auth import SiweMessage, rfc3339

    base = rpc.rstrip("/")
    chain = _http(base, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    if "result" not in chain:
        raise CommandError(f"the node did not tell its chain id: {chain.get('error')}")
    nonce = _http(f"{base}/auth/nonce")["nonce"]
    now = time.time()
    message = SiweMessage(
        domain=domain_of(rpc),
        address=account.address,
        uri=base,
        chain_id=int(chain["result"], 16),
        nonce=nonce,
        issued_at=rfc3339(now),
        statement=statement or None,
        expiration_time=None if expires_in is None else rfc3339(now + expires_in),
    ).text()
    signature = account.sign_message(encode_defunct(text=message)).signature
    return dict(_http(f"{base}/auth/login", {"message": message, "signature": "0x" + bytes(signature).hex()}))


def _asking_node(what: str, run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`run` with the node's refusals (of `what`) and an absent node told as errors."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except CommandError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except urllib.error.HTTPError as refused:
            detail = refused.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("detail", detail)
            except (ValueError, AttributeError):
                pass
            print(f"error: the node refused the {what} ({refused.code}): {detail}", file=sys.stderr)
            return 1
        except (urllib.error.URLError, OSError) as exc:
            print(
                f"error: no node answers at {args.rpc} ({exc}): start one (conclave dev) or pass --rpc",
                file=sys.stderr,
            )
            return 2

    return guarded


def _login(args: argparse.Namespace) -> int:
    domain_of(args.rpc)
    session = sign_in(
        args.rpc,
        load_account(args, "the account's"),
        expires_in=args.expires_in,
        statement=args.statement,
    )
    rpc_url = f"{args.rpc.rstrip('/')}/rpc/{session['token']}"
    if args.json:
        print(json.dumps({**session, "rpcUrl": rpc_url}))
        return 0
    until = datetime.fromtimestamp(session["expiresAt"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"signed in as {session['address']} until {until}")
    print(f"token:   {session['token']}")
    print(f"RPC URL: {rpc_url}")
    print('send the token as "Authorization: Bearer <token>", or use the RPC URL where headers cannot be set')
    return 0


def _logout(args: argparse.Namespace) -> int:
    signed_out = _http(f"{args.rpc.rstrip('/')}/auth/logout", {}, token=args.token)
    if args.json:
        print(json.dumps(signed_out))
        return 0
    when = datetime.fromtimestamp(signed_out["signedOutAt"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"signed out {signed_out['address']} everywhere: tokens issued until {when} are refused")
    return 0


run_login = _asking_node("login", _login)
run_logout = _asking_node("sign-out", _logout)
