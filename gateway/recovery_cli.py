"""`conclave recovery`: the members' side of disaster recovery (docs/recovery.md).

    register-key   record your account's public key in governance (your share is encrypted to it)
    status         where recovery stands on a node
    share          fetch your encrypted share and open it with your key (printed, for checking)
    submit-share   open your share and submit it to a recovering node, encrypted to its enclave
    approve-reopening  approve the recovered node as the validator that reopens the network

The member's key never leaves this machine: the share is opened here and sent encrypted to
the recovering enclave's node key, signed with the member's key. Before that, submit-share
attests the recovering node: its quote over a fresh nonce must verify against the network's
attestation roots and approved measurements (--genesis, or --attestation-root and
--measurement) and name the very key the share is encrypted to.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave.attestation import AttestationError, Quote, verify_quote

from .cli_keys import CommandError, add_key_arguments, add_node_command, load_account

RECOVERY_EPILOG = """\
examples:
  conclave recovery register-key --rpc http://127.0.0.1:8545 --key-file alice.json
  conclave recovery status --rpc http://127.0.0.1:8545
  conclave recovery share --rpc http://10.0.0.9:8545 --key-file alice.json --json
  conclave recovery submit-share --rpc http://10.0.0.9:8545 --key-file alice.json --genesis genesis.json

Recovering a network whose nodes are all lost (docs/recovery.md):
  1. an operator starts a node on a surviving copy of the ledger, in recovery mode:
       conclave node --config node.toml --recover
  2. each member holding a share submits it (the threshold: `status` shows it), once the
     recovering enclave is attested against the network's genesis document:
       conclave recovery submit-share --rpc URL --key-file member.json --genesis genesis.json
  3. at the threshold the enclave restores the ledger secrets, verifies the ledger, and the
     node starts as usual, serving the ledger;
  4. the members reopen the network with it as the validator (as many approvals as shares):
       conclave recovery approve-reopening --rpc URL --key-file member.json --genesis genesis.json
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
        parser = add_node_command(actions, name, help, epilog=RECOVERY_EPILOG)
        if signs:
            add_key_arguments(parser, "the member's")
        return parser

    register = command(
        "register-key", "record your account's public key in governance, for your recovery share", signs=True
    )
    register.add_argument(
        "--timeout", type=float, default=60, help="seconds to wait for the receipt (default: %(default)s)"
    )
    register.add_argument(
        "--show",
        action="store_true",
        help="only print the key (a genesis document's recoveryKey, conclave init --recovery-key): "
        "send nothing",
    )
    register.set_defaults(run=run_register_key)
    command("status", "show where recovery stands on a node", signs=False).set_defaults(run=run_status)
    command("share", "fetch your recovery share and open it with your key", signs=True).set_defaults(
        run=run_share
    )
    submit = command("submit-share", "submit your recovery share to a node in recovery mode", signs=True)
    add_attestation_arguments(submit)
    submit.set_defaults(run=run_submit_share)
    add_reopening_command(command)


def announce_recovery(as_json: bool, facts: dict[str, Any]) -> None:
    """What `conclave node --recover` prints when it listens."""
    if as_json:
        print(json.dumps(facts), flush=True)
        return
    print(
        f"\nConclave node: RECOVERY MODE\n\nListening on {facts['rpcUrl']} "
        "(/node/status, /node/quote, /recovery/...)\n"
        f"Members submit their shares: conclave recovery submit-share --rpc {facts['rpcUrl']} "
        "--key-file MEMBER.json --genesis GENESIS.json\n",
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

    trust = attestation_trust(args)  # before anything is fetched: a missing flag stops here
    status = _get(args, "/recovery/status")
    if not status["sealed"]:
        raise CommandError(f"the node at {args.rpc} reads its ledger: it is not recovering")
    node_public_key = bytes.fromhex(status["nodePublicKey"][2:])
    attested = None if trust is None else _attest_recovering_node(args, trust, node_public_key)
    account, share, _ = _open_own_share(args)
    encrypted, signature = seal_submission(share, node_public_key, int(status["chainId"]), bytes(account.key))
    answer = httpx.post(
        args.rpc.rstrip("/") + "/recovery/submit",
        json={"encryptedShare": "0x" + encrypted.hex(), "signature": "0x" + signature.hex()},
        timeout=600,
    )
    result = _answer(answer)
    result["attestation"] = None if attested is None else _quote_claims(attested)
    text = (
        "recovered: the ledger secrets are restored and the ledger verified; the node starts"
        if not result["sealed"]
        else f"share taken: {len(result['submitted'])} of {result['threshold']} submitted"
    )
    if attested is not None:
        text = (
            f"attested: enclave measurement 0x{attested.measurement.hex()}, "
            f"node key 0x{attested.node_public_key.hex()}\n{text}"
        )
    _print(args, result, text)
    return 0


@_guarded
def run_register_key(args: argparse.Namespace) -> int:
    from eth_keys import keys

    from .gov_cli import _transact

    account = load_account(args, "a member's")
    public_key = keys.PrivateKey(bytes(account.key)).public_key.to_compressed_bytes()
    if args.show:
        result = {"member": account.address, "publicKey": "0x" + public_key.hex()}
        _print(args, result, f"recovery key of {account.address}: 0x{public_key.hex()} (not registered)")
        return 0
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


# -- attesting the recovering node ----------------------------------------------------------
# A share is encrypted to the key `/recovery/status` names: a host could name its own. So the
# member first asks the node for a quote over a fresh nonce and verifies it as `conclave
# attest` does (`enclave.attestation.verify_quote`): a platform certified by a trusted root,
# an approved measurement, fresh, over that nonce, and quoting that very key.


@dataclass(frozen=True)
class AttestationTrust:
    """What a recovering node's quote is checked against."""

    roots: frozenset[bytes]
    measurements: frozenset[bytes]


NO_TRUST_GIVEN = (
    "{command} attests the recovering node before it sends anything: pass --genesis "
    "GENESIS.json (the network's genesis document: its attestationRoots and measurements), or "
    "--attestation-root ROOT and --measurement MEASUREMENT (each repeatable); --no-attest skips "
    "the check (unsafe: whoever runs the node could read your share)"
)


def add_attestation_arguments(parser: argparse.ArgumentParser, *, max_age: bool = True) -> None:
    """The trust flags; `--max-age` with `max_age` (a quote the command asks for now)."""
    from .attest_cli import DEFAULT_MAX_AGE

    parser.add_argument(
        "--genesis",
        type=Path,
        metavar="FILE",
        help="the network's genesis document: trust its attestationRoots, approve its measurements",
    )
    parser.add_argument(
        "--attestation-root",
        action="append",
        default=[],
        metavar="ROOT",
        help="a trusted attestation root: its public key in hex, a file holding that, or an emulated "
        "vendor's root key file such as `conclave net up`'s attestation-root.bin (repeat)",
    )
    parser.add_argument(
        "--measurement",
        action="append",
        default=[],
        metavar="HEX",
        help="an approved enclave measurement, 32 bytes in hex (repeat)",
    )
    if max_age:
        parser.add_argument(
            "--max-age",
            type=int,
            default=DEFAULT_MAX_AGE,
            help="seconds the node's quote stays fresh (default: %(default)s)",
        )
    parser.add_argument(
        "--no-attest",
        action="store_true",
        help="do not attest the node (UNSAFE: its host could read your share, or be approved as a validator)",
    )


def _hex_key(text: str, what: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise CommandError(f"{what} {text!r}: expected 32 bytes in hex") from None
    if len(key) != 32:
        raise CommandError(f"{what} {text!r}: expected 32 bytes in hex, got {len(key)}")
    return key


def _attestation_root(text: str) -> bytes:
    """`--attestation-root`: a public key in hex, a file holding one, or a root key file."""
    if text.startswith("0x") or not Path(text).is_file():
        return _hex_key(text, "--attestation-root")
    from enclave.platform import AttestationRoot

    content = Path(text).read_bytes()
    if len(content) == 32:  # the emulated vendor's root key (enclave.keystore.ROOT_FILE)
        return AttestationRoot.from_bytes(content).public_key
    return _hex_key(content.decode(errors="replace"), f"--attestation-root {text}:")


def attestation_trust(args: argparse.Namespace) -> AttestationTrust | None:
    """The roots and measurements `args` name (None: --no-attest); CommandError if none."""
    if args.no_attest:
        if args.genesis or args.attestation_root or args.measurement:
            raise CommandError(
                "--no-attest skips the attestation: pass it without --genesis, "
                "--attestation-root or --measurement"
            )
        print(
            "WARNING: --no-attest: the recovering node is NOT attested. What you send goes to "
            "whatever enclave, or key, its host names; if the host is not honest, it reads your share.",
            file=sys.stderr,
        )
        return None
    roots = {_attestation_root(text) for text in args.attestation_root}
    measurements = {_hex_key(text, "--measurement") for text in args.measurement}
    if args.genesis is not None:
        genesis_roots, genesis_measurements = _genesis_trust(args.genesis)
        if not genesis_roots and not roots:
            raise CommandError(
                f"{args.genesis} names no attestationRoots: pass the network's with --attestation-root"
            )
        roots |= genesis_roots
        measurements |= genesis_measurements
    if not roots and not measurements:
        raise CommandError(NO_TRUST_GIVEN.format(command=getattr(args, "recovery_command", "recovery")))
    if not roots:
        raise CommandError("no trusted attestation root: pass --attestation-root ROOT (or --genesis)")
    if not measurements:
        raise CommandError("no approved enclave measurement: pass --measurement HEX (or --genesis)")
    return AttestationTrust(frozenset(roots), frozenset(measurements))


def _genesis_trust(path: Path) -> tuple[set[bytes], set[bytes]]:
    """The roots and measurements a node reading `path` with this installation's code trusts
    and approves: those listed, the validators' measurements, and this code's own if the
    document leaves a validator's implicit (as `conclave node` reads it)."""
    from enclave.attestation import measure_enclave

    from .attest_cli import PROJECT_ROOT
    from .genesis_document import InvalidGenesis, read_genesis

    try:
        state = read_genesis(json.loads(path.read_text())).governance
    except (OSError, ValueError) as failed:  # InvalidGenesis is a ValueError
        reason = failed if isinstance(failed, InvalidGenesis) else f"not readable: {failed}"
        raise CommandError(f"--genesis {path}: {reason}") from None
    measurements = set(state.measurements)
    measurements |= {v.measurement for v in state.validators.values() if v.measurement}
    if not state.validators or not all(v.measurement for v in state.validators.values()):
        measurements.add(measure_enclave(PROJECT_ROOT))
    return set(state.attestation_roots), measurements


def verify_recovering_node(
    raw_quote: bytes,
    *,
    nonce: bytes,
    node_public_key: bytes,
    trust: AttestationTrust,
    now: int,
    max_age: int,
) -> Quote:
    """The recovering node's quote if a share may be encrypted to `node_public_key`;
    AttestationError saying why not."""
    quote = verify_quote(
        raw_quote,
        roots=trust.roots,
        approved_measurements=trust.measurements,
        now=now,
        max_age=max_age,
        report_data=nonce,
    )
    if quote.node_public_key != node_public_key:
        raise AttestationError(
            f"the attested enclave's node key is 0x{quote.node_public_key.hex()}, but the node asks "
            f"for shares encrypted to 0x{node_public_key.hex()}: it is not that enclave's key"
        )
    return quote


def _attest_recovering_node(
    args: argparse.Namespace, trust: AttestationTrust, node_public_key: bytes
) -> Quote:
    nonce = os.urandom(32)
    served = _get(args, f"/node/quote?reportData=0x{nonce.hex()}")
    try:
        return verify_recovering_node(
            bytes.fromhex(str(served["quote"]).removeprefix("0x")),
            nonce=nonce,
            node_public_key=node_public_key,
            trust=trust,
            now=int(time.time()),
            max_age=args.max_age,
        )
    except (AttestationError, KeyError, ValueError) as refused:
        raise CommandError(
            f"the recovering node at {args.rpc} failed attestation, your share was not sent: {refused}"
        ) from None


def _quote_claims(quote: Quote) -> dict[str, Any]:
    return {
        "measurement": "0x" + quote.measurement.hex(),
        "nodePublicKey": "0x" + quote.node_public_key.hex(),
        "platformKey": "0x" + quote.platform_key.hex(),
        "issuedAt": quote.issued_at,
    }


# -- reopening --


def add_reopening_command(command: Any) -> None:
    """`approve-reopening`: a member's approval of the reopening a recovered node proposes."""
    approve = command(
        "approve-reopening",
        "approve the reopening a recovered node proposes: it becomes the network's validator",
        signs=True,
    )
    add_attestation_arguments(approve, max_age=False)  # a validator's quote: fresh for an hour
    approve.set_defaults(run=run_approve_reopening)


@_guarded
def run_approve_reopening(args: argparse.Namespace) -> int:
    import httpx

    from enclave.attestation import VALIDATOR_QUOTE_MAX_AGE
    from enclave.identity import address_of
    from governance.exceptions import InvalidAction
    from governance.reopening import Reopening, sign_approval

    trust = attestation_trust(args)  # before anything is fetched: a missing flag stops here
    fetched = _get(args, "/recovery/reopening")
    try:
        reopening = Reopening.decode(bytes.fromhex(str(fetched["reopening"]).removeprefix("0x")))
    except (InvalidAction, ValueError) as malformed:
        raise CommandError(f"the node's reopening does not decode: {malformed}") from None
    named = []
    for validator in reopening.validators:
        if trust is None:
            named.append(f"{validator.endpoint} (not attested)")
            continue
        try:
            quote = verify_quote(
                validator.quote,
                roots=trust.roots,
                approved_measurements=trust.measurements,
                now=int(time.time()),
                max_age=VALIDATOR_QUOTE_MAX_AGE,
            )
        except (AttestationError, ValueError) as refused:
            raise CommandError(f"the proposed validator's quote does not verify: {refused}") from None
        address = "0x" + bytes(address_of(quote.node_public_key)).hex()
        named.append(f"{address} at {validator.endpoint}, measurement 0x{quote.measurement.hex()}")
    account = load_account(args, "a member's")
    signature = sign_approval(reopening, bytes(account.key))
    answer = httpx.post(
        args.rpc.rstrip("/") + "/recovery/reopening",
        json={"reopening": fetched["reopening"], "signature": "0x" + signature.hex()},
        timeout=120,
    )
    result = _answer(answer)
    after = f"after block {reopening.parent_number} (0x{reopening.parent_hash.hex()})"
    text = (
        f"reopened at block {result['block']}: validators {', '.join(named)}"
        if result["reopened"]
        else f"approved the reopening {after} with validators {', '.join(named)}; {result['problem']}"
    )
    _print(args, result, text)
    return 0
