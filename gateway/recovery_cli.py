"""`conclave recovery`: the members' side of disaster recovery (docs/recovery.md).

    register-key   record your account's public key in governance (your share is encrypted to it)
    status         where recovery stands on a node
    share          fetch your encrypted share and open it with your key (printed, for checking)
    submit-share   open your share and submit it to a recovering node, encrypted to its enclave

The member's key never leaves this machine: the share is opened here and sent encrypted to
the recovering enclave's node key, signed with the member's key.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .cli_keys import CommandError, add_key_arguments, load_account

DEFAULT_RPC = "http://127.0.0.1:8545"

RECOVERY_EPILOG = """\
examples:
  conclave recovery register-key --rpc http://127.0.0.1:8545 --key-file alice.json
  conclave recovery status --rpc http://127.0.0.1:8545
  conclave recovery share --rpc http://10.0.0.9:8545 --key-file alice.json --json
  conclave recovery submit-share --rpc http://10.0.0.9:8545 --key-file alice.json

Recovering a network whose nodes are all lost (docs/recovery.md):
  1. an operator starts a node on a surviving copy of the ledger, in recovery mode:
       conclave node --config node.toml --recover
  2. each member holding a share submits it (the threshold: `status` shows it):
       conclave recovery submit-share --rpc URL --key-file member.json
  3. at the threshold the enclave restores the ledger secrets, verifies the ledger, and the
     node starts as usual.
"""


def add_recovery_commands(commands: Any) -> None:
    recovery = commands.add_parser(
        "recovery",
        help="disaster recovery: register recovery keys, fetch and submit recovery shares",
        description="Disaster recovery: the members' recovery keys and shares (docs/recovery.md).",
        epilog=RECOVERY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = recovery.add_subparsers(dest="recovery_command", metavar="ACTION", required=True)

    def command(name: str, help: str, *, signs: bool) -> argparse.ArgumentParser:
        parser = actions.add_parser(
            name,
            help=help,
            description=help,
            epilog=RECOVERY_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("--rpc", default=DEFAULT_RPC, help="the node's URL (default: %(default)s)")
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
        if signs:
            add_key_arguments(parser, "the member's")
        return parser

    register = command(
        "register-key", "record your account's public key in governance, for your recovery share", signs=True
    )
    register.add_argument(
        "--timeout", type=float, default=60, help="seconds to wait for the receipt (default: %(default)s)"
    )
    register.set_defaults(run=run_register_key)
    command("status", "show where recovery stands on a node", signs=False).set_defaults(run=run_status)
    command("share", "fetch your recovery share and open it with your key", signs=True).set_defaults(
        run=run_share
    )
    command("submit-share", "submit your recovery share to a node in recovery mode", signs=True).set_defaults(
        run=run_submit_share
    )


def announce_recovery(as_json: bool, facts: dict[str, Any]) -> None:
    """What `conclave node --recover` prints when it listens."""
    if as_json:
        print(json.dumps(facts), flush=True)
        return
    print(
        f"\nConclave node: RECOVERY MODE\n\nListening on {facts['rpcUrl']} (/node/status, /recovery/...)\n"
        f"Members submit their shares: conclave recovery submit-share --rpc {facts['rpcUrl']} "
        "--key-file MEMBER.json\n",
        flush=True,
    )


# -- commands -----------------------------------------------------------------------------


def _guarded(run: Any) -> Any:
    def guarded(args: argparse.Namespace) -> int:
        import httpx

        try:
            return int(run(args))
        except CommandError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except httpx.TransportError as error:
            print(f"error: no node answers at {args.rpc} ({error}): pass its URL with --rpc", file=sys.stderr)
            return 2

    return guarded


def _get(args: argparse.Namespace, path: str) -> dict[str, Any]:
    import httpx

    answer = httpx.get(args.rpc.rstrip("/") + path, timeout=30)
    return _answer(answer)


def _answer(answer: Any) -> dict[str, Any]:
    if answer.status_code != 200:
        try:
            reason = answer.json().get("detail", answer.text)
        except ValueError:
            reason = answer.text or answer.reason_phrase
        raise CommandError(f"{reason} (HTTP {answer.status_code})")
    return answer.json()  # type: ignore[no-any-return]


def _print(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    print(json.dumps(result) if args.json else text)


@_guarded
def run_status(args: argparse.Namespace) -> int:
    status = _get(args, "/recovery/status")
    lines = [
        "sealed (recovery needed)" if status["sealed"] else "the enclave reads the ledger",
        f"recovery set   issued at block {status['issuedAt']}, {status['threshold']} of "
        f"{len(status['holders'])} shares restore it"
        if status["issuedAt"] is not None
        else "recovery set   none stored",
        f"holders        {', '.join(status['holders']) or '-'}",
        f"submitted      {', '.join(status['submitted']) or '-'}",
    ]
    if status["problem"]:
        lines.append(f"problem        {status['problem']}")
    _print(args, status, "\n".join(lines))
    return 0


def _open_own_share(args: argparse.Namespace) -> tuple[Any, bytes, dict[str, Any]]:
    """The member's account, its share in clear, and what the node answered."""
    from enclave.recovery import RecoverySet, open_share
    from enclave.sealing import UnsealError
    from evm_runtime.types import Address

    account = load_account(args, "a member's")
    fetched = _get(args, f"/recovery/share/{account.address}")
    recovery_set = RecoverySet.from_bytes(bytes.fromhex(fetched["recoverySet"][2:]))
    try:
        share = open_share(recovery_set, Address(bytes.fromhex(account.address[2:])), bytes(account.key))
    except UnsealError as refused:
        raise CommandError(f"your share does not open with this key: {refused}") from None
    return account, share, fetched


@_guarded
def run_share(args: argparse.Namespace) -> int:
    account, share, fetched = _open_own_share(args)
    result = {
        "member": account.address,
        "share": "0x" + share.hex(),
        "issuedAt": fetched["issuedAt"],
        "threshold": fetched["threshold"],
    }
    _print(
        args,
        result,
        f"share of {account.address} (set of block {fetched['issuedAt']}, {fetched['threshold']} "
        f"needed): 0x{share.hex()}\nkeep it secret: with enough others it restores the ledger secrets",
    )
    return 0


@_guarded
def run_submit_share(args: argparse.Namespace) -> int:
    import httpx

    from enclave.recovery import seal_submission

    status = _get(args, "/recovery/status")
    if not status["sealed"]:
        raise CommandError(f"the node at {args.rpc} reads its ledger: it is not recovering")
    account, share, _ = _open_own_share(args)
    encrypted, signature = seal_submission(
        share, bytes.fromhex(status["nodePublicKey"][2:]), int(status["chainId"]), bytes(account.key)
    )
    answer = httpx.post(
        args.rpc.rstrip("/") + "/recovery/submit",
        json={"encryptedShare": "0x" + encrypted.hex(), "signature": "0x" + signature.hex()},
        timeout=600,
    )
    result = _answer(answer)
    text = (
        "recovered: the ledger secrets are restored and the ledger verified; the node starts"
        if not result["sealed"]
        else f"share taken: {len(result['submitted'])} of {result['threshold']} submitted"
    )
    _print(args, result, text)
    return 0


@_guarded
def run_register_key(args: argparse.Namespace) -> int:
    from eth_keys import keys

    from .gov_cli import _transact

    account = load_account(args, "a member's")
    public_key = keys.PrivateKey(bytes(account.key)).public_key.to_compressed_bytes()
    try:
        _, _, receipt = _transact(args, lambda contract: contract.functions.setRecoveryKey(public_key))
    except ValueError as refused:  # web3's errors (a revert's reason, a refused transaction)
        raise CommandError(str(refused)) from None
    result = {
        "member": account.address,
        "publicKey": "0x" + public_key.hex(),
        "transactionHash": "0x" + bytes(receipt["transactionHash"]).hex(),
    }
    _print(args, result, f"recovery key of {account.address} registered: 0x{public_key.hex()}")
    return 0
