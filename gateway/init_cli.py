"""`conclave init`: write the genesis document of a new network (`gateway.genesis_document`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

INIT_EPILOG = """\
examples:
  conclave init --member 0xA11CE…:"Acme Retail" --member 0xB0B…:"Beta Distribution" \\
                --member 0xCA401…:"Gamma Vendors" --permissioned --user 0xD00D… --out genesis.json
  conclave init --member 0xA11CE… --constitution constitution.json --fund 0xA11CE…:1000
  conclave init --member 0xA11CE… --recovery-key 0x02…   recoverable from block 0 (docs/recovery.md)
  conclave dev --genesis genesis.json          start a dev node of that consortium
  conclave init --member 0xA11CE… --validator 0x5EED…@10.0.0.1:30300 \
                --validator 0x5EED2…@10.0.0.2:30300     a network of several validators

The document names the consortium's first members, users, constitution and network
configuration, and the ether accounts start with. Without --validator, the node that
starts the network is its only validator; with it, the validators are those named, each
by its node address (`conclave node keys` prints it) and the host:port its validator
transport listens on, and each starts with `conclave node` (docs/network.md).
docs/governance.md describes the constitution's format.
"""


def add_init_command(commands: Any) -> None:
    init = commands.add_parser(
        "init",
        help="write the genesis document of a new network (members, users, constitution)",
        description="Write the genesis document of a new network.",
        epilog=INIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument(
        "--member",
        action="append",
        required=True,
        metavar="ADDRESS[:NAME]",
        help="a founding member (repeat)",
    )
    init.add_argument(
        "--recovery-key",
        action="append",
        default=[],
        metavar="PUBLIC_KEY",
        help="a member's recovery key: the compressed public key (0x02…/0x03…) of its address, "
        "for disaster recovery from block 0 (repeat; docs/recovery.md)",
    )
    init.add_argument("--user", action="append", default=[], metavar="ADDRESS", help="a user (repeat)")
    init.add_argument(
        "--deployer",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a user who may create contracts (repeat)",
    )
    init.add_argument(
        "--constitution", type=Path, help="a constitution file (JSON; default: the default constitution)"
    )
    init.add_argument(
        "--permissioned", action="store_true", help="only users and members may send transactions"
    )
    init.add_argument(
        "--permissioned-deployment", action="store_true", help="only deployers may create contracts"
    )
    init.add_argument("--chain-id", type=int, help="the network's EIP-155 chain id")
    init.add_argument(
        "--validator",
        action="append",
        default=[],
        metavar="ADDRESS@HOST:PORT",
        help="a validator: its node address and transport endpoint (repeat)",
    )
    init.add_argument(
        "--timestamp",
        type=int,
        help="the genesis block's time in seconds since 1970 (default with --validator: now)",
    )
    init.add_argument(
        "--fund",
        action="append",
        default=[],
        metavar="ADDRESS:ETH",
        help="ether an account starts with (repeat)",
    )
    init.add_argument(
        "--out", type=Path, default=Path("genesis.json"), help="where to write (default: %(default)s)"
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--json", action="store_true", help="print the document instead of a summary")
    init.set_defaults(run=run_init)


def run_init(args: argparse.Namespace) -> int:
    from .genesis_document import InvalidGenesis, genesis_document, read_genesis

    try:
        members = []
        for entry in args.member:
            address, _, name = entry.partition(":")
            members.append({"address": address, "name": name})
        for key in args.recovery_key:
            _with_recovery_key(members, key)
        users = {address: {"address": address, "deploy": False} for address in args.user}
        users.update({address: {"address": address, "deploy": True} for address in args.deployer})
        consortium: dict[str, Any] = {"members": members, "users": list(users.values())}
        if args.constitution is not None:
            try:
                consortium["constitution"] = json.loads(args.constitution.read_text())
            except (OSError, ValueError) as exc:
                raise InvalidGenesis(f"could not read {args.constitution}: {exc}") from None
        config = {}
        if args.permissioned:
            config["open_submission"] = False
        if args.permissioned_deployment:
            config["open_deployment"] = False
        consortium["config"] = config
        alloc = {}
        for entry in args.fund:
            address, _, ether = entry.partition(":")
            try:
                alloc[address] = {"balance": str(int(ether) * 10**18)}
            except ValueError:
                raise InvalidGenesis(f"--fund {entry}: expected ADDRESS:ETH, ETH a whole number") from None
        validators = []
        for entry in args.validator:
            address, at, endpoint = entry.partition("@")
            if not at:
                raise InvalidGenesis(f"--validator {entry}: expected ADDRESS@HOST:PORT")
            validators.append({"address": address, "endpoint": endpoint})
        if validators:
            consortium["validators"] = validators
        document: dict[str, Any] = {"alloc": alloc, "consortium": consortium}
        if args.chain_id is not None:
            document["chainId"] = args.chain_id
        if args.timestamp is not None or validators:
            document["timestamp"] = int(time.time()) if args.timestamp is None else args.timestamp
        spec = read_genesis(document)  # checks everything
    except InvalidGenesis as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    written = genesis_document(spec)
    if args.out.exists() and not args.force:
        print(f"error: {args.out} exists: pass --force to overwrite it, or another --out", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(written, indent=2) + "\n")
    if args.json:
        print(json.dumps(written))
        return 0
    state = spec.governance
    submission = "open" if state.config.open_submission else "permissioned"
    print(
        f"wrote {args.out}: {len(state.members)} members, {len(state.users)} users, "
        f"constitution {state.constitution.name!r}, submission {submission}"
    )
    keyed = sum(1 for member in state.members.values() if member.recovery_key)
    if keyed:
        print(f"{keyed} members have recovery keys (docs/recovery.md)")
    if state.validators:
        print(
            f"{len(state.validators)} validators: start each with `conclave node --config FILE` "
            f'naming genesis = "{args.out}" (docs/network.md)'
        )
    else:
        print(f"start a dev node of this consortium with: conclave dev --genesis {args.out}")
    return 0


def _with_recovery_key(members: list[dict[str, str]], key: str) -> None:
    """Put `--recovery-key KEY` on the member whose address it is the key of."""
    from eth_keys import keys
    from eth_utils.exceptions import ValidationError

    from .genesis_document import InvalidGenesis

    try:
        owner = keys.PublicKey.from_compressed_bytes(bytes.fromhex(key.removeprefix("0x")))
    except (ValueError, ValidationError):
        raise InvalidGenesis(
            f"--recovery-key {key}: expected a compressed secp256k1 public key (0x02… or 0x03…, 33 bytes)"
        ) from None
    for member in members:
        if member["address"].lower() == owner.to_address():
            member["recoveryKey"] = "0x" + owner.to_compressed_bytes().hex()
            return
    raise InvalidGenesis(
        f"--recovery-key {key}: the key of {owner.to_checksum_address()}, which is not a --member "
        "(a member's recovery key is its own address's public key)"
    )
