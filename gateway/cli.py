"""The `conclave` command line."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_data_dir

from evm_runtime.defaults import DEFAULT_CHAIN_ID, DEFAULT_GAS_LIMIT

from .attest_cli import add_attest_command
from .auth_cli import add_auth_commands
from .dev_accounts import DEFAULT_BALANCE_ETH, DEFAULT_COUNT, TEST_MNEMONIC, WEI_PER_ETH
from .gov_cli import add_gov_commands
from .init_cli import add_init_command
from .ledger_cli import add_ledger_commands
from .net_cli import add_net_commands
from .node_cli import add_node_command
from .receipt_cli import add_receipt_commands
from .recovery_cli import add_recovery_commands

if TYPE_CHECKING:
    from .dev_accounts import DevAccount

DEV_EPILOG = """\
examples:
  conclave dev                               start a dev chain on http://127.0.0.1:8545
  conclave dev --ephemeral --port 0          a throw-away chain on a free port
  conclave dev --block-time 2                seal a block every 2 seconds
  conclave dev --rate-limit 100              at most 100 requests a second per client
  conclave dev --database-url postgresql+psycopg://user@localhost/conclave

The chain survives restarts: start it again with the same --data-dir (and --database-url,
if given) and it continues where it stopped. Its state is stored sealed with the keys of the
node's enclave, kept in DATA_DIR/enclave (with --database-url too), which open only for the
same Conclave code: after an upgrade, start a dev chain in a new --data-dir. Connect
web3.py, ethers or viem to the printed URL and use the printed keys to sign.
"""


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _bounded_int(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be from {low:,} to {high:,}")
        return value

    return parse


def _chain_id(text: str) -> int:
    value = int(text, 0)
    if not 0 < value < 2**64:
        raise argparse.ArgumentTypeError("must be a positive 64-bit integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conclave",
        description="Conclave: a confidential, permissioned, Ethereum-compatible ledger for consortiums.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    dev = commands.add_parser(
        "dev",
        help="run a single-validator development chain with funded accounts",
        description="Run a single-validator development chain. Ten accounts derived from the "
        "test mnemonic are funded at genesis; their keys are printed at start-up.",
        epilog=DEV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dev.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    dev.add_argument(
        "--port",
        type=_bounded_int(0, 65_535, "the port"),
        default=8545,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    dev.add_argument(
        "--chain-id", type=_chain_id, default=DEFAULT_CHAIN_ID, help="EIP-155 chain id (default: %(default)s)"
    )
    dev.add_argument(
        "--gas-limit",
        type=_bounded_int(21_000, 2**63 - 1, "the block gas limit"),
        default=DEFAULT_GAS_LIMIT,
        help="block gas limit (default: %(default)s)",
    )
    dev.add_argument(
        "--block-time",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="seal a block every SECONDS, even if empty (default: as soon as transactions wait)",
    )
    store = dev.add_mutually_exclusive_group()
    store.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the ledger and the enclave's sealed keys are kept (with --database-url, the keys) "
        f"(default: {default_data_dir()})",
    )
    store.add_argument(
        "--ephemeral", action="store_true", help="use a throw-away data directory, deleted at exit"
    )
    dev.add_argument(
        "--database-url", default=None, help="any SQLAlchemy URL instead of the data directory's SQLite file"
    )
    dev.add_argument(
        "--genesis",
        type=Path,
        default=None,
        help="a genesis document (conclave init) naming the consortium "
        "(default: the first dev account governs alone)",
    )
    dev.add_argument("--mnemonic", default=TEST_MNEMONIC, help="mnemonic the dev accounts derive from")
    dev.add_argument(
        "--accounts",
        type=_bounded_int(1, 1_000, "the number of accounts"),
        default=DEFAULT_COUNT,
        help="how many dev accounts (default: %(default)s)",
    )
    dev.add_argument(
        "--balance",
        type=_bounded_int(0, 10**30, "the balance in ETH"),
        default=DEFAULT_BALANCE_ETH,
        help="ETH each dev account holds at genesis (default: %(default)s)",
    )
    dev.add_argument(
        "--enclave",
        choices=["process", "in-process"],
        default="process",
        help="run the enclave in its own OS process (the trust boundary) or in this one "
        "(default: %(default)s)",
    )
    limits = dev.add_argument_group("limits", "what one request, query or the pool may hold")
    limits.add_argument(
        "--max-request-mib",
        type=_bounded_int(1, 1024, "the request size in MiB"),
        default=5,
        help="largest HTTP body or WebSocket message, in MiB (default: %(default)s)",
    )
    limits.add_argument(
        "--max-batch",
        type=_bounded_int(1, 100_000, "the batch length"),
        default=1_000,
        help="most requests in one JSON-RPC batch (default: %(default)s)",
    )
    limits.add_argument(
        "--max-log-blocks",
        type=_bounded_int(1, 10_000_000, "the log block range"),
        default=100_000,
        help="widest block range of one eth_getLogs (default: %(default)s)",
    )
    limits.add_argument(
        "--max-log-results",
        type=_bounded_int(1, 100_000, "the log result count"),
        default=10_000,
        help="most logs one eth_getLogs returns (default: %(default)s)",
    )
    limits.add_argument(
        "--pool-size",
        type=_bounded_int(1, 1_000_000, "the pool size"),
        default=10_000,
        help="most transactions waiting in the pool (default: %(default)s)",
    )
    dev.add_argument(
        "--rate-limit",
        type=_positive_float,
        default=None,
        metavar="PER_SECOND",
        help="JSON-RPC requests a second per client address, bursts of twice that (default: no limit)",
    )
    dev.add_argument("--json", action="store_true", help="print the start-up information as one JSON line")
    dev.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    dev.set_defaults(run=run_dev)
    add_ledger_commands(commands, default_data_dir())
    add_attest_command(commands)
    add_gov_commands(commands)
    add_auth_commands(commands)
    add_init_command(commands)
    add_node_command(commands)
    add_receipt_commands(commands)
    add_recovery_commands(commands)  # disaster recovery (docs/recovery.md)
    add_net_commands(commands, default_data_dir().with_name("net"))
    return parser


def default_data_dir() -> Path:
    return Path(user_data_dir("conclave")) / "dev"


def run_dev(args: argparse.Namespace) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="conclave-")) if args.ephemeral else None
    try:
        return _serve_dev(args, scratch or args.data_dir or default_data_dir())
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _serve_dev(args: argparse.Namespace, data_dir: Path) -> int:
    # Imported here, not at the top: `conclave --help` should not wait for py-evm.
    from evm_runtime.chain import GenesisAccount
    from governance.state import NetworkConfig
    from ledger.database import is_in_memory

    from .dev_accounts import derive_accounts
    from .genesis_document import read_genesis
    from .node import NodeConfig
    from .serving import ServeOptions, serve

    accounts = derive_accounts(args.mnemonic, args.accounts)
    alloc = {a.address_bytes: GenesisAccount(balance=args.balance * WEI_PER_ETH) for a in accounts}
    chain_id, governance, timestamp = args.chain_id, None, None
    if args.genesis is not None:
        try:
            spec = read_genesis(json.loads(args.genesis.read_text()))
        except (OSError, ValueError) as exc:
            print(f"error: the genesis document {args.genesis} cannot be used: {exc}", file=sys.stderr)
            return 2
        if spec.governance.validators:
            print(
                f"error: the genesis document {args.genesis} names validators: a dev chain is one "
                "validator, this node; start a network of them with `conclave net up` or `conclave node`",
                file=sys.stderr,
            )
            return 2
        alloc.update(spec.alloc)
        chain_id = args.chain_id = spec.chain_id or chain_id
        governance = spec.governance
        timestamp = spec.timestamp
        if governance.config.block_gas_limit != NetworkConfig().block_gas_limit:
            args.gas_limit = governance.config.block_gas_limit  # the document's, over the flag's
    if args.database_url:
        database_url = args.database_url
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{data_dir / 'ledger.sqlite'}"
    config = NodeConfig(
        database_url=database_url,
        chain_id=chain_id,
        gas_limit=args.gas_limit,
        block_time=args.block_time,
        genesis_alloc=alloc,
        genesis_governance=governance,
        genesis_timestamp=timestamp,
        dev_accounts=tuple(a.address_bytes for a in accounts),
        dev_keys=tuple(bytes.fromhex(a.private_key[2:]) for a in accounts),
        dev_mode=True,
        enclave_mode=args.enclave,
        max_log_results=args.max_log_results,
        max_log_block_range=args.max_log_blocks,
        pool_size=args.pool_size,
        # The enclave's keys seal the state: they live as long as the database (in memory only
        # with an in-memory database).
        enclave_dir=None if is_in_memory(database_url) else data_dir / "enclave",
    )
    options = ServeOptions(
        host=args.host,
        port=args.port,
        max_request_mib=args.max_request_mib,
        max_batch=args.max_batch,
        rate_limit=args.rate_limit,
        log_level=args.log_level,
    )
    return serve(
        config,
        options,
        lambda _node, rpc_url: _announce(args, accounts, rpc_url, None if args.database_url else data_dir),
    )


def _announce(
    args: argparse.Namespace, accounts: list[DevAccount], rpc_url: str, data_dir: Path | None
) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "rpcUrl": rpc_url,
                    "chainId": args.chain_id,
                    "dataDir": str(data_dir) if data_dir else None,
                    "accounts": [{"address": a.address, "privateKey": a.private_key} for a in accounts],
                }
            ),
            flush=True,
        )
        return
    lines = [
        "",
        "Conclave dev chain",
        "==================",
        "",
        f"Accounts (each funded with {args.balance:,} ETH)",
        "",
    ]
    lines += [f"({i}) {a.address}" for i, a in enumerate(accounts)]
    lines += ["", "Private keys", ""]
    lines += [f"({i}) {a.private_key}" for i, a in enumerate(accounts)]
    lines += [
        "",
        f"Mnemonic:   {args.mnemonic}",
        "Derivation: m/44'/60'/0'/0/i",
        "",
        f"Chain id:   {args.chain_id}",
        f"Data:       {data_dir or 'database URL'}",
        f"Listening on {rpc_url}",
        "",
    ]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
