"""`conclave attest`: fetch a node's attestation quote, or take one, and verify it."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from enclave.attestation import AttestationError, Quote, measure_enclave, verify_quote

DEFAULT_MAX_AGE = 60
PROJECT_ROOT = Path(__file__).resolve().parents[1]

ATTEST_EPILOG = """\
examples:
  conclave attest --url http://127.0.0.1:8545            a fresh quote, checked against this code
  conclave attest --url URL --root 0x… --measurement 0x…  pin the root and the approved code
  conclave attest --quote 0x… --root 0x…                  verify a quote you already have

Verification checks that the platform key is certified by the attestation root, that the
platform signed the quote, that the measurement is an approved one (by default: the
measurement of the enclave code in this installation), that the quote is fresh, and, with
--url, that it answers the random challenge sent. Exit status 0: verified; 1: not; 2: the
quote could not be fetched or read.
"""


def add_attest_command(commands: Any) -> None:
    attest = commands.add_parser(
        "attest",
        help="fetch and verify a node's attestation quote",
        description="Fetch a node's attestation quote (or take one) and verify it.",
        epilog=ATTEST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = attest.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="the node's URL; a quote is asked for over a random challenge")
    source.add_argument("--quote", help="a quote in hex, as /node/quote serves it")
    attest.add_argument(
        "--root", help="the attestation root's public key in hex (default with --url: the node's)"
    )
    attest.add_argument(
        "--measurement",
        action="append",
        default=[],
        help="an approved enclave measurement in hex, repeatable (default: this installation's)",
    )
    attest.add_argument(
        "--max-age",
        type=int,
        default=DEFAULT_MAX_AGE,
        help="seconds a quote stays fresh (default: %(default)s)",
    )
    attest.add_argument("--report-data", help="the report data the quote must carry, in hex")
    attest.add_argument("--json", action="store_true", help="print the result as one JSON object")
    attest.set_defaults(run=run_attest)


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _fetch(url: str, challenge: bytes) -> dict[str, Any]:
    address = f"{url.rstrip('/')}/node/quote?reportData=0x{challenge.hex()}"
    with urllib.request.urlopen(address, timeout=30) as response:  # noqa: S310 - the user's node URL
        return dict(json.load(response))


def run_attest(args: argparse.Namespace) -> int:
    warnings: list[str] = []
    try:
        if args.url:
            challenge = os.urandom(32)
            served = _fetch(args.url, challenge)
            raw, expected = _hex(served["quote"]), challenge
            root = _hex(args.root) if args.root else _hex(served["attestationRoot"])
            if not args.root:
                warnings.append("trusting the attestation root the node names itself: pass --root to pin it")
        else:
            raw = _hex(args.quote)
            expected = _hex(args.report_data) if args.report_data else None
            if not args.root:
                print("error: --root is needed to verify a quote given with --quote", file=sys.stderr)
                return 2
            root = _hex(args.root)
        approved = {_hex(m) for m in args.measurement} or {measure_enclave(PROJECT_ROOT)}
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        print(f"error: could not get a quote: {exc}", file=sys.stderr)
        return 2
    try:
        quote = verify_quote(
            raw,
            roots=[root],
            approved_measurements=approved,
            now=int(time.time()),
            max_age=args.max_age,
            report_data=expected,
        )
    except AttestationError as exc:
        _report(args, ok=False, reason=str(exc), quote=None, warnings=warnings)
        return 1
    _report(args, ok=True, reason=None, quote=quote, warnings=warnings)
    return 0


def _report(
    args: argparse.Namespace, *, ok: bool, reason: str | None, quote: Quote | None, warnings: list[str]
) -> None:
    claims = (
        {}
        if quote is None
        else {
            "measurement": "0x" + quote.measurement.hex(),
            "nodePublicKey": "0x" + quote.node_public_key.hex(),
            "platformKey": "0x" + quote.platform_key.hex(),
            "issuedAt": quote.issued_at,
        }
    )
    if args.json:
        print(json.dumps({"verified": ok, "reason": reason, "warnings": warnings, **claims}))
        return
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not ok:
        print(f"attestation FAILED: {reason}")
        return
    print("attestation verified")
    for name, value in claims.items():
        print(f"  {name}: {value}")
