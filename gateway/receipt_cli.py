"""`conclave receipt get` and `conclave receipt verify`: receipts anyone can verify.

`get` asks a node for a transaction's receipt (conclave_getTransactionProof) and prints
it as JSON; `verify` checks a receipt file offline against a validator set the user
trusts (`gateway.receipts.verify_document`) and says what it proves, or why it does not
verify: exit code 0 valid, 1 invalid, 2 for a file or argument it cannot read.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .cli_keys import DEFAULT_RPC

RECEIPT_EPILOG = """\
examples:
  conclave receipt get 0x5c50…e2 > receipt.json                  from http://127.0.0.1:8545
  conclave receipt get 0x5c50…e2 --rpc https://node.example.com --token "$TOKEN" > receipt.json
  conclave receipt verify receipt.json --validators 0xf39F…2266
  conclave receipt verify receipt.json --validators 0xf39F…2266,0x7099…79C8 --json

A confidential transaction's receipt is given only to its parties and auditors: sign in
first (conclave auth login) and pass the token. Anyone can verify the file offline,
knowing the network's validators at the receipt's block or at any earlier block (the
genesis validators, say): the receipt carries the governance changes that lead from
them to its block's, and the members' approvals of a recovered network's reopening. See
docs/receipts.md.
"""


def add_receipt_commands(commands: Any) -> None:
    receipt = commands.add_parser(
        "receipt",
        help="get a transaction's verifiable receipt, or verify one offline",
        description="Receipts anyone can verify: a transaction, its receipt, their Merkle proofs, "
        "the block header and its commit certificate.",
        epilog=RECEIPT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = receipt.add_subparsers(dest="receipt_command", metavar="ACTION", required=True)
    get = actions.add_parser(
        "get",
        help="print a transaction's verifiable receipt (JSON)",
        description="Ask a node for a transaction's verifiable receipt and print it as JSON.",
        epilog=RECEIPT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    get.add_argument("tx_hash", metavar="TXHASH", help="the transaction hash (0x and 64 hex digits)")
    get.add_argument("--rpc", default=DEFAULT_RPC, help="the node's JSON-RPC URL (default: %(default)s)")
    get.add_argument(
        "--token", default=None, help="a login token (conclave auth login), for a confidential one"
    )
    get.set_defaults(run=run_get)
    verify = actions.add_parser(
        "verify",
        help="verify a receipt file offline against trusted validators",
        description="Verify a receipt offline: its Merkle proofs, its header and a commit certificate "
        "of a quorum of the trusted validators (or of those governance named after them). Exit code "
        "0: valid; 1: invalid, with the reason; 2: the file or the arguments cannot be read.",
        epilog=RECEIPT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("file", metavar="FILE", help="the receipt (JSON), or - for standard input")
    verify.add_argument(
        "--validators",
        required=True,
        type=_addresses,
        help="the validators you trust, comma-separated addresses: the set of the receipt's block or "
        "of an earlier one (e.g. the genesis validators)",
    )
    verify.add_argument("--json", action="store_true", help="print the result as one JSON object")
    verify.set_defaults(run=run_verify)


def _addresses(text: str) -> list[str]:
    from .receipts import parse_validators

    addresses = [part.strip() for part in text.split(",") if part.strip()]
    try:
        parse_validators(addresses)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not addresses:
        raise argparse.ArgumentTypeError("name at least one validator")
    return addresses


def run_get(args: argparse.Namespace) -> int:
    headers = {"Content-Type": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    payload = {"jsonrpc": "2.0", "id": 1, "method": "conclave_getTransactionProof", "params": [args.tx_hash]}
    request = urllib.request.Request(args.rpc, data=json.dumps(payload).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the user's node URL
            answer = json.load(response)
    except urllib.error.HTTPError as refused:
        print(f"error: the node refused the request ({refused.code}): {_detail(refused)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: no node answers at {args.rpc} ({exc}): start one or pass --rpc", file=sys.stderr)
        return 2
    if "error" in answer:
        print(f"error: {answer['error'].get('message')}", file=sys.stderr)
        return 1
    if answer.get("result") is None:
        hint = "" if args.token else " (a confidential one: sign in as one of its parties and pass --token)"
        print(
            f"error: no block holds transaction {args.tx_hash} that this caller may see{hint}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(answer["result"], indent=2))
    return 0


def _detail(refused: urllib.error.HTTPError) -> str:
    text = refused.read().decode(errors="replace")
    try:
        answer = json.loads(text)
    except ValueError:
        return text
    error = answer.get("error") if isinstance(answer, dict) else None
    return str(error.get("message", text)) if isinstance(error, dict) else text


def run_verify(args: argparse.Namespace) -> int:
    from .receipts import InvalidReceipt, verified_to_json, verify_document

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        document = json.loads(text)
    except (OSError, UnicodeDecodeError) as error:
        print(f"error: cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"error: {args.file} is not JSON: {error}", file=sys.stderr)
        return 2
    try:
        verified = verify_document(document, args.validators)
    except InvalidReceipt as invalid:
        if args.json:
            print(json.dumps({"valid": False, "reason": str(invalid)}))
        else:
            print(f"invalid: {invalid}")
        return 1
    shown = verified_to_json(verified)
    if args.json:
        print(json.dumps(shown))
        return 0
    created = f"creates {shown['contractAddress']}" if shown["to"] is None else shown["to"]
    status = "success" if verified.status == 1 else "failed (reverted)"
    changes = verified.changes_followed
    print(f"valid: transaction {shown['transactionHash']} is final in block {verified.block_number}")
    print(f"  block    {shown['blockHash']}, index {verified.index}, timestamp {verified.timestamp}")
    print(f"  from     {shown['from']}")
    print(f"  to       {created}")
    print(f"  nonce {verified.nonce}, value {verified.value} wei, chain {verified.chain_id}")
    print(f"  status   {status}, {len(verified.logs)} log(s)")
    reopenings = verified.reopenings_followed
    print(
        f"  certified by {len(verified.signers)} of {len(verified.validators)} validators"
        + (f", after {changes} validator-set change(s) from the trusted set" if changes else "")
        + (f", {reopenings} of them a reopening the members approved" if reopenings else "")
    )
    return 0
