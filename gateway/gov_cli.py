"""`conclave gov`: the consortium's governance from the command line.

Every command talks JSON-RPC to a node (`--rpc`); the ones that change governance sign a
transaction to the governance contract with the member's key (`--key`, `--key-file`, or
the CONCLAVE_KEY environment variable) and wait for its receipt.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .cli_keys import CommandError, add_key_arguments, add_node_command, load_account

STATE_NAMES = ("open", "accepted", "rejected", "withdrawn", "expired", "failed", "dropped")

GOV_EPILOG = """\
Members govern through the governance system contract at a fixed address: any wallet or
web3 library that has its ABI can do what these commands do. Examples:
  conclave gov abi > governance.json                the ABI, for web3.py, ethers, viem or MetaMask
  conclave gov propose add_user 0xUSER --key-file k.json
  conclave gov propose add_member 0xADDR "Acme Ltd" --key 0x…
  conclave gov propose set_config open_submission false --key 0x…
  conclave gov propose set_constitution constitution.json --key 0x…
  conclave gov vote 3 yes --key 0x…                 cast or change a ballot
  conclave gov withdraw 3 --key 0x…
  conclave gov list --json                          every proposal
  conclave gov show 3                               one proposal, its actions and ballots
docs/governance.md explains the actions, their arguments and the constitution's format.
"""

CONSTITUTION_HELP = """A constitution file is JSON:
  {"name": "Acme consortium", "termsHash": "0x…32 bytes…", "votingPeriod": 604800,
   "defaultThreshold": "more than 1/2",
   "thresholds": {"add_member": "at least 2/3", "set_constitution": "at least 2/3"},
   "vetoes": {"remove_member": ["0x…"]}}"""


def add_gov_commands(commands: Any) -> None:
    gov = commands.add_parser(
        "gov",
        help="govern the consortium: propose, vote, withdraw, list and show proposals",
        description="The consortium's governance, through the governance system contract.",
        epilog=GOV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = gov.add_subparsers(dest="gov_command", metavar="ACTION", required=True)
    abi = actions.add_parser("abi", help="print the governance contract's JSON ABI (or its address)")
    abi.add_argument("--address", action="store_true", help="print the contract's address instead")
    abi.set_defaults(run=run_abi)

    def node_command(
        name: str, help: str, *, signs: bool, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        command = add_node_command(actions, name, help, epilog=epilog)
        if signs:
            add_key_arguments(command, "the member's")
            command.add_argument(
                "--timeout",
                type=float,
                default=60,
                help="seconds to wait for the receipt (default: %(default)s)",
            )
        return command

    propose = node_command("propose", "propose one action", signs=True, epilog=CONSTITUTION_HELP)
    propose.add_argument("kind", help="the action: add_member, add_user, set_config, set_constitution, …")
    propose.add_argument(
        "values", nargs="*", help="the action's arguments, in order (see docs/governance.md)"
    )
    propose.set_defaults(run=run_propose)
    vote = node_command("vote", "cast or change a ballot on an open proposal", signs=True)
    vote.add_argument("id", type=int, help="the proposal's id")
    vote.add_argument("ballot", choices=("yes", "no"), help="yes to accept, no to reject")
    vote.set_defaults(run=run_vote)
    withdraw = node_command("withdraw", "withdraw an open proposal you made", signs=True)
    withdraw.add_argument("id", type=int, help="the proposal's id")
    withdraw.set_defaults(run=run_withdraw)
    node_command("list", "list every proposal", signs=False).set_defaults(run=run_list)
    show = node_command("show", "show one proposal: its actions, ballots and state", signs=False)
    show.add_argument("id", type=int, help="the proposal's id")
    show.set_defaults(run=run_show)


def run_abi(args: argparse.Namespace) -> int:
    from eth_utils import to_checksum_address

    from governance.system_contract import ABI, GOVERNANCE_ADDRESS

    print(to_checksum_address(GOVERNANCE_ADDRESS) if args.address else json.dumps(ABI, indent=2))
    return 0


# -- arguments to actions -----------------------------------------------------------------


def _hex_bytes(text: str, length: int | None, what: str) -> bytes:
    try:
        value = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise CommandError(f"{what} must be hex, got {text!r}") from None
    if length is not None and len(value) != length:
        raise CommandError(f"{what} must have {length} bytes, got {len(value)}")
    return value


def _boolean(text: str, what: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false", "yes", "no", "1", "0"):
        raise CommandError(f"{what} must be true or false, got {text!r}")
    return lowered in ("true", "yes", "1")


def _constitution(path: str) -> Any:
    from .genesis_document import InvalidGenesis, constitution_from_document

    try:
        return constitution_from_document(json.loads(Path(path).read_text()))
    except (OSError, ValueError) as exc:
        if isinstance(exc, InvalidGenesis):
            raise CommandError(f"the constitution file {path} is not valid: {exc}") from None
        raise CommandError(f"could not read the constitution file {path}: {exc}") from None


def parse_action(kind: str, values: list[str]) -> Any:
    """The action `conclave gov propose KIND VALUES…` asks for."""
    from governance.actions import OPTIONAL_ARGS
    from governance.state import CONFIG_KEYS, Action
    from governance.system_contract import ACTION_ARGS

    fields = ACTION_ARGS.get(kind)
    if fields is None:
        raise CommandError(f"unknown action {kind!r}; known: {', '.join(sorted(ACTION_ARGS))}")
    if kind == "set_constitution":
        if len(values) != 1:
            raise CommandError("set_constitution takes one argument: a constitution file (see --help)")
        return Action(kind, {"constitution": _constitution(values[0])})
    optional = set(OPTIONAL_ARGS)
    needed = [name for name, _ in fields if name not in optional]
    if not len(needed) <= len(values) <= len(fields):
        usage = " ".join(name if name not in optional else f"[{name}]" for name, _ in fields)
        raise CommandError(f"usage: conclave gov propose {kind} {usage}".rstrip())
    args: dict[str, object] = {}
    for (name, kind_of), text in zip(fields, values, strict=False):
        if kind_of == "address":
            args[name] = _hex_bytes(text, 20, name)
        elif kind_of in ("bytes32", "bytes"):
            args[name] = _hex_bytes(text, 32 if kind_of == "bytes32" else None, name)
        elif kind_of == "bool":
            args[name] = _boolean(text, name)
        elif kind_of == "uint256":
            key = args.get("key")
            if CONFIG_KEYS.get(str(key)) is bool:
                args[name] = _boolean(text, str(key))
            else:
                try:
                    args[name] = int(text, 0)
                except ValueError:
                    raise CommandError(f"{name} must be a whole number, got {text!r}") from None
        else:
            args[name] = text
    return Action(kind, args)


# -- talking to the node ------------------------------------------------------------------


def _contract(args: argparse.Namespace) -> tuple[Any, Any]:
    from eth_utils import to_checksum_address
    from web3 import Web3

    from governance.system_contract import ABI, GOVERNANCE_ADDRESS

    w3 = Web3(Web3.HTTPProvider(args.rpc, request_kwargs={"timeout": 30}))
    return w3, w3.eth.contract(address=to_checksum_address(GOVERNANCE_ADDRESS), abi=ABI)


def _transact(args: argparse.Namespace, build: Any) -> tuple[Any, Any, Any]:
    """Sign and send the transaction `build(contract)` makes; (w3, contract, receipt)."""
    from web3.exceptions import ContractLogicError

    w3, contract = _contract(args)
    account = load_account(args, "a member's")
    function = build(contract)
    try:
        tx = function.build_transaction(
            {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
        )
    except ContractLogicError as refused:
        raise CommandError(str(refused.message or refused)) from None
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), args.timeout
    )
    if receipt["status"] != 1:
        raise CommandError(f"transaction 0x{bytes(receipt['transactionHash']).hex()} reverted")
    return w3, contract, receipt


def _proposal(contract: Any, pid: int) -> dict[str, Any]:
    from governance.system_contract import decode_action

    proposer, state, created, closes, yes, no, failure = contract.functions.proposal(pid).call()
    raw_actions = contract.functions.proposalActions(pid).call()
    actions = []
    for kind, encoded in raw_actions:
        action = decode_action(kind, encoded)
        actions.append(
            {"kind": kind, "args": {name: _jsonable(value) for name, value in action.args.items()}}
        )
    return {
        "id": pid,
        "proposer": proposer,
        "state": STATE_NAMES[state],
        "createdAt": created,
        "closesAt": closes,
        "yes": yes,
        "no": no,
        "failure": failure or None,
        "actions": actions,
    }


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool | int | str):
        return value
    return repr(value)


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _print(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    print(json.dumps(result) if args.json else text)


def _events(contract: Any, receipt: Any, name: str) -> list[Any]:
    from web3.logs import DISCARD

    return list(getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD))


def _resolution(contract: Any, receipt: Any) -> str | None:
    resolved = _events(contract, receipt, "ProposalResolved")
    return STATE_NAMES[resolved[-1]["args"]["state"]] if resolved else None


def _guarded(run: Any) -> Any:
    def guarded(args: argparse.Namespace) -> int:
        from requests.exceptions import ConnectionError as Unreachable
        from web3.exceptions import TimeExhausted, Web3Exception

        try:
            return int(run(args))
        except CommandError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except Unreachable:
            print(
                f"error: no node answers at {args.rpc}: start one (conclave dev) or pass --rpc",
                file=sys.stderr,
            )
            return 2
        except (TimeExhausted, Web3Exception, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return guarded


@_guarded
def run_propose(args: argparse.Namespace) -> int:
    from governance.system_contract import encode_action

    action = parse_action(args.kind, args.values)
    _, contract, receipt = _transact(args, lambda c: c.functions.propose([encode_action(action)]))
    (created,) = _events(contract, receipt, "ProposalCreated")
    pid, closes = created["args"]["id"], created["args"]["closesAt"]
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    _print(
        args,
        {"id": pid, "closesAt": closes, "transaction": tx_hash},
        f"proposal {pid} opened ({action.kind}); open until {_when(closes)}; transaction {tx_hash}",
    )
    return 0


@_guarded
def run_vote(args: argparse.Namespace) -> int:
    approve = args.ballot == "yes"
    _, contract, receipt = _transact(args, lambda c: c.functions.vote(args.id, approve))
    state = _resolution(contract, receipt) or "open"
    _print(
        args,
        {"id": args.id, "ballot": args.ballot, "state": state},
        f"ballot {args.ballot} cast on proposal {args.id}; the proposal is {state}",
    )
    return 0


@_guarded
def run_withdraw(args: argparse.Namespace) -> int:
    _transact(args, lambda c: c.functions.withdraw(args.id))
    _print(args, {"id": args.id, "state": "withdrawn"}, f"proposal {args.id} withdrawn")
    return 0


@_guarded
def run_list(args: argparse.Namespace) -> int:
    _, contract = _contract(args)
    proposals = [_proposal(contract, pid) for pid in range(1, contract.functions.proposalCount().call() + 1)]
    if args.json:
        print(json.dumps({"proposals": proposals}))
        return 0
    if not proposals:
        print("no proposals yet")
    for p in proposals:
        kinds = ", ".join(action["kind"] for action in p["actions"])
        print(f"{p['id']:>4}  {p['state']:<9} yes {p['yes']} no {p['no']}  by {p['proposer']}  {kinds}")
    return 0


@_guarded
def run_show(args: argparse.Namespace) -> int:
    _, contract = _contract(args)
    if not 0 < args.id <= contract.functions.proposalCount().call():
        raise CommandError(f"no proposal {args.id}: `conclave gov list` shows them")
    proposal = _proposal(contract, args.id)
    members = contract.functions.members().call()
    ballots = {}
    for member in members:
        voted, approve = contract.functions.ballot(args.id, member).call()
        if voted:
            ballots[member] = "yes" if approve else "no"
    proposal["ballots"] = ballots
    if args.json:
        print(json.dumps(proposal))
        return 0
    print(f"proposal {proposal['id']}: {proposal['state']}")
    print(f"  proposed by {proposal['proposer']} at {_when(proposal['createdAt'])}")
    print(f"  open until {_when(proposal['closesAt'])}; yes {proposal['yes']}, no {proposal['no']}")
    if proposal["failure"]:
        print(f"  failed: {proposal['failure']}")
    for action in proposal["actions"]:
        rendered = ", ".join(f"{name}={value}" for name, value in action["args"].items())
        print(f"  action {action['kind']}({rendered})")
    for member, ballot in ballots.items():
        print(f"  ballot {member}: {ballot}")
    return 0
