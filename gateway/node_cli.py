"""`conclave node`: run one validator of a network from its config file, and make its keys.

The config is TOML; relative paths are relative to the file (NODE_EPILOG shows one). A
config that cannot be used stops the command before anything starts, with exit status 2
and a message naming the key and what to do.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from .serving import ServeOptions

if TYPE_CHECKING:
    from .genesis_document import GenesisSpec
    from .node import Node, NodeConfig

ENCLAVE_DIR = "enclave"
"""Where a node keeps its enclave's keys, inside its data directory (as `conclave dev` does)."""
LEDGER_FILE = "ledger.sqlite"
ENCLAVE_MODES = ("process", "in-process")
LOG_LEVELS = ("debug", "info", "warning", "error")

NODE_EPILOG = """\
examples:
  conclave node --config node0.toml            run the validator node0.toml describes
  conclave node keys --data-dir node0          make (or show) its keys: address, quote, …
  conclave node keys --data-dir node1 --attestation-root node0/enclave/attestation-root.bin

A config file (TOML; paths are relative to it):

  data_dir = "node0"              # the ledger (SQLite) and the enclave's keys (DATA_DIR/enclave)
  genesis = "genesis.json"        # the network's genesis document (conclave init)
  # database_url = "postgresql+psycopg://user@localhost/node0"   # the ledger elsewhere
  # join = "http://10.0.0.1:8545" # a running validator: fetch the ledger secrets from it first
  # log_level = "info"            # debug, info, warning or error

  [rpc]                           # JSON-RPC, HTTP and WebSocket
  host = "127.0.0.1"
  port = 8545                     # 0: a free port
  # rate_limit = 100              # requests a second per client address (default: no limit)
  # max_request_mib = 5
  # max_batch = 1000

  [p2p]                           # the validator transport: its endpoint in the genesis document
  host = "127.0.0.1"
  port = 30300

  [consensus]
  round_timeout = 1.0             # seconds before QBFT's round 0 changes round

  [enclave]
  mode = "process"                # or "in-process"

The validators start from the genesis document that names them (each by the address
`conclave node keys` prints). They share one set of ledger secrets: the first starts
without `join`; every other one, and any validator the members add later (add_validator
with its quote), names a running validator as `join`, from which it fetches the secrets
while its ledger is empty. docs/network.md walks through both.
"""

KEYS_EPILOG = """\
The keys live in DATA_DIR/enclave, sealed to this Conclave's enclave code, and are made on
first use. The attestation root is the emulated platform vendor: the validators of one
network must share one (or the genesis document must list each one's), so give every
node of a local network the same root file with --attestation-root. It is copied into
DATA_DIR/enclave before the node's platform is made, and cannot change afterwards.

  QUOTE=$(conclave node keys --data-dir node4 --quote)
  conclave gov propose add_validator "$QUOTE" 10.0.0.4:30300 --key-file alice.json
"""


class NodeSetupError(Exception):
    """What stops a node from starting, and what to do about it; exit status 2."""


@dataclass(frozen=True)
class NodeFile:
    """A node's config file, read and checked (paths resolved against its folder)."""

    path: Path
    data_dir: Path
    genesis: Path
    rpc: ServeOptions
    database_url: str | None = None
    join: str | None = None
    p2p: tuple[str, int] | None = None
    round_timeout: float = 1.0
    enclave_mode: Literal["process", "in-process"] = "process"

    @property
    def enclave_dir(self) -> Path:
        return self.data_dir / ENCLAVE_DIR

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / LEDGER_FILE}"


_REQUIRED: Any = object()


class _Table:
    """One TOML table of a config: typed reads that name the key when they fail, and a
    check that no key was left unread (a misspelt key is an error, not a silent default)."""

    def __init__(self, values: dict[str, Any] | None, file: Path, prefix: str = "") -> None:
        self.given = values is not None
        """Whether the file has this table (a missing one reads as empty)."""
        self._values = dict(values or {})
        self._file = file
        self._prefix = prefix
        self._known: list[str] = []

    def _fail(self, key: str, problem: str) -> NodeSetupError:
        return NodeSetupError(f"{self._file}: {self._prefix}{key}: {problem}")

    def _take(self, key: str, default: Any, what: str) -> Any:
        self._known.append(key)
        if key in self._values:
            return self._values.pop(key)
        if default is _REQUIRED:
            raise self._fail(key, f"missing: set it to {what}")
        return default

    def text(self, key: str, default: Any = _REQUIRED, *, what: str = "a string") -> Any:
        value = self._take(key, default, what)
        if value is not default and not (isinstance(value, str) and value):
            raise self._fail(key, f"expected {what}, got {value!r}")
        return value

    def choice(self, key: str, default: str, choices: Collection[str]) -> str:
        value = self.text(key, default, what=" or ".join(f'"{c}"' for c in choices))
        if value not in choices:
            raise self._fail(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return cast(str, value)

    def integer(self, key: str, default: Any, low: int, high: int) -> Any:
        what = f"a whole number from {low} to {high}"
        value = self._take(key, default, what)
        if value is not default and (type(value) is not int or not low <= value <= high):
            raise self._fail(key, f"expected {what}, got {value!r}")
        return value

    def number(self, key: str, default: Any, *, below: float, what: str) -> Any:
        what = f"{what}: a positive number below {below:g}"
        value = self._take(key, default, what)
        if value is not default and (type(value) not in (int, float) or not 0 < value < below):
            raise self._fail(key, f"expected {what}, got {value!r}")
        return None if value is None else float(value)

    def table(self, key: str) -> _Table:
        value = self._take(key, None, "a table")
        if value is not None and not isinstance(value, dict):
            raise self._fail(key, f"expected a table ([{self._prefix}{key}]), got {value!r}")
        return _Table(value, self._file, f"{self._prefix}{key}.")

    def done(self) -> None:
        """Refuse the keys nobody read."""
        if self._values:
            unknown = ", ".join(f"{self._prefix}{key}" for key in sorted(self._values))
            known = ", ".join(self._known)
            where = f"[{self._prefix.rstrip('.')}]" if self._prefix else "the top level"
            raise NodeSetupError(
                f"{self._file}: unknown key {unknown}: {where} takes {known} (check the spelling, "
                "or see `conclave node --help`)"
            )


def read_node_file(path: Path) -> NodeFile:
    """The node config at `path`; NodeSetupError names the key and what to do."""
    from ledger.database import is_in_memory

    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise NodeSetupError(
            f"{path}: no such config file: pass the path of one (`conclave node --help` shows an example)"
        ) from None
    except OSError as exc:
        raise NodeSetupError(f"{path}: cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NodeSetupError(f"{path}: not valid TOML: {exc}") from None
    base = path.resolve().parent
    top = _Table(document, path)
    data_dir = (base / top.text("data_dir", what='the node\'s data folder, such as "node0"')).resolve()
    genesis = (
        base / top.text("genesis", what='the network\'s genesis document, such as "genesis.json"')
    ).resolve()
    database_url = top.text("database_url", None, what="an SQLAlchemy URL")
    if database_url is not None and is_in_memory(database_url):
        raise NodeSetupError(
            f"{path}: database_url: an in-memory database loses the ledger at exit: "
            "name a file or a server, or leave it out for DATA_DIR/ledger.sqlite"
        )
    join = top.text("join", None, what='a running validator\'s URL, such as "http://127.0.0.1:8545"')
    if join is not None and not join.startswith(("http://", "https://")):
        raise NodeSetupError(f"{path}: join: expected an http:// or https:// URL, got {join!r}")
    log_level = top.choice("log_level", "info", LOG_LEVELS)

    rpc = top.table("rpc")
    rpc_options = ServeOptions(
        host=rpc.text("host", "127.0.0.1", what="an address to listen on"),
        port=rpc.integer("port", 8545, 0, 65_535),
        rate_limit=rpc.number("rate_limit", None, below=1e9, what="requests a second per client"),
        max_request_mib=rpc.integer("max_request_mib", 5, 1, 1024),
        max_batch=rpc.integer("max_batch", 1_000, 1, 100_000),
        log_level=log_level,
        port_advice=f"set [rpc] port in {path} to a free one (0: any free port)",
    )
    rpc.done()
    p2p = top.table("p2p")
    p2p_listen = (
        (
            p2p.text("host", "127.0.0.1", what="an address to listen on"),
            p2p.integer("port", _REQUIRED, 1, 65_535),
        )
        if p2p.given
        else None
    )
    p2p.done()
    consensus = top.table("consensus")
    round_timeout = consensus.number("round_timeout", 1.0, below=3_600, what="seconds")
    consensus.done()
    enclave = top.table("enclave")
    mode = enclave.choice("mode", "process", ENCLAVE_MODES)
    enclave.done()
    top.done()
    return NodeFile(
        path=path,
        data_dir=data_dir,
        genesis=genesis,
        rpc=rpc_options,
        database_url=database_url,
        join=join,
        p2p=p2p_listen,
        round_timeout=round_timeout,
        enclave_mode=cast(Literal["process", "in-process"], mode),
    )


def read_network_genesis(file: NodeFile) -> GenesisSpec:
    """The genesis document `file` names, checked against it; NodeSetupError if unusable."""
    from .genesis_document import read_genesis

    try:
        spec = read_genesis(json.loads(file.genesis.read_text()))
    except FileNotFoundError:
        raise NodeSetupError(
            f"{file.path}: genesis: {file.genesis} does not exist: write the network's with `conclave init`"
        ) from None
    except (OSError, ValueError) as exc:
        raise NodeSetupError(f"{file.path}: genesis: {file.genesis} cannot be used: {exc}") from None
    if spec.governance.validators and file.p2p is None:
        raise NodeSetupError(
            f"{file.path}: the genesis document names validators, so this node needs [p2p] host and "
            "port: where its validator transport listens (its endpoint in the document)"
        )
    return spec


def node_config(file: NodeFile, spec: GenesisSpec) -> NodeConfig:
    """What the node of `file` runs with: the network of `spec`, its own keys and ledger."""
    from evm_runtime.defaults import DEFAULT_CHAIN_ID

    from .node import NodeConfig

    return NodeConfig(
        database_url=file.ledger_url,
        chain_id=spec.chain_id or DEFAULT_CHAIN_ID,
        gas_limit=spec.governance.config.block_gas_limit,
        genesis_alloc=spec.alloc,
        genesis_timestamp=spec.timestamp,
        genesis_governance=spec.governance,
        enclave_mode=file.enclave_mode,
        enclave_dir=file.enclave_dir,
        p2p_listen=file.p2p,
        round_timeout=file.round_timeout,
        join_url=file.join,
    )


# -- keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeKeys:
    """Who a node is: what its enclave's keys and code prove."""

    address: bytes
    public_key: bytes
    measurement: bytes
    attestation_root: bytes
    quote: bytes
    """A fresh quote over no report data: what `add_validator` takes (for an hour)."""

    def to_json(self) -> dict[str, str]:
        from eth_utils import to_checksum_address

        return {
            "address": to_checksum_address(self.address),
            "publicKey": "0x" + self.public_key.hex(),
            "measurement": "0x" + self.measurement.hex(),
            "attestationRoot": "0x" + self.attestation_root.hex(),
            "quote": "0x" + self.quote.hex(),
        }


def _install_root(enclave_dir: Path, root_file: Path) -> None:
    """Put the attestation root key of `root_file` where the keystore makes its platform from."""
    from enclave.keystore import PLATFORM_FILE, ROOT_FILE
    from enclave.platform import AttestationRoot

    try:
        raw = root_file.read_bytes()
        AttestationRoot.from_bytes(raw)
    except OSError as exc:
        raise NodeSetupError(f"--attestation-root {root_file}: cannot be read: {exc.strerror}") from None
    except ValueError:
        raise NodeSetupError(
            f"--attestation-root {root_file}: not an attestation root key (32 bytes, as a node's "
            f"{ENCLAVE_DIR}/{ROOT_FILE} holds)"
        ) from None
    target = enclave_dir / ROOT_FILE
    if (enclave_dir / PLATFORM_FILE).exists():
        if not target.exists() or target.read_bytes() != raw:
            raise NodeSetupError(
                f"{enclave_dir} holds a platform certified by another attestation root, and a "
                "node's keys cannot move to another: make this node in a new --data-dir"
            )
        return
    enclave_dir.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_bytes(raw)
    temporary.chmod(0o600)
    temporary.replace(target)


def make_keys(data_dir: Path, attestation_root: Path | None = None) -> NodeKeys:
    """The keys of the node in `data_dir` (DATA_DIR/enclave), made on first use; with
    `attestation_root`, its platform is made under that root key file."""
    from enclave.attestation import make_quote, measure_enclave
    from enclave.keystore import KeystoreLocked, open_keystore

    from .attest_cli import PROJECT_ROOT

    enclave_dir = data_dir / ENCLAVE_DIR
    if attestation_root is not None:
        _install_root(enclave_dir, attestation_root)
    measurement = measure_enclave(PROJECT_ROOT)
    try:
        keystore = open_keystore(enclave_dir, measurement)
    except KeystoreLocked as exc:
        raise NodeSetupError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise NodeSetupError(f"{enclave_dir}: the enclave's keys cannot be opened: {exc}") from None
    identity = keystore.identity
    quote = make_quote(keystore.platform, measurement, identity.public_key, b"", int(time.time()))
    return NodeKeys(
        identity.address, identity.public_key, measurement, keystore.attestation_root, quote.encode()
    )


# -- commands -----------------------------------------------------------------------------


def add_node_command(commands: Any) -> None:
    node = commands.add_parser(
        "node",
        help="run a validator node from its config file; make its keys (node keys)",
        description="Run one validator node of a network, as its config file (TOML) describes.",
        epilog=NODE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    node.add_argument("--config", type=Path, metavar="FILE", help="the node's config file (TOML)")
    node.add_argument("--json", action="store_true", help="print the start-up information as one JSON line")
    # -- disaster recovery (docs/recovery.md) --
    node.add_argument(
        "--recover",
        action="store_true",
        help="recovery mode: the ledger's secrets are lost with every node; serve /recovery/... until "
        "members' shares restore them (conclave recovery submit-share), then run as usual",
    )
    node.set_defaults(run=run_node)
    actions = node.add_subparsers(dest="node_command", metavar="ACTION")
    keys = actions.add_parser(
        "keys",
        help="make (or show) a node's enclave keys: its address, public key, measurement, quote",
        description="Make a node's enclave keys in DATA_DIR/enclave, or open them, and show them.",
        epilog=KEYS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keys.add_argument("--data-dir", type=Path, required=True, help="the node's data folder")
    keys.add_argument(
        "--attestation-root",
        type=Path,
        metavar="FILE",
        help="an attestation root key file to make the node's platform under (shared by a network's nodes)",
    )
    shown = keys.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the keys as one JSON object")
    shown.add_argument(
        "--quote", action="store_true", help="print only a fresh attestation quote (for add_validator)"
    )
    keys.set_defaults(run=run_keys)


def run_keys(args: argparse.Namespace) -> int:
    try:
        keys = make_keys(args.data_dir, args.attestation_root).to_json()
    except NodeSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.quote:
        print(keys["quote"])
    elif args.json:
        print(json.dumps(keys))
    else:
        print(f"node address      {keys['address']}")
        print(f"public key        {keys['publicKey']}")
        print(f"measurement       {keys['measurement']}")
        print(f"attestation root  {keys['attestationRoot']}")
        print(f"(keys in {args.data_dir / ENCLAVE_DIR}; --quote prints a fresh quote for add_validator)")
    return 0


def run_node(args: argparse.Namespace) -> int:
    from .serving import serve

    if args.config is None:
        print(
            "error: conclave node needs --config FILE (`conclave node --help` shows one), "
            "or an action such as `conclave node keys`",
            file=sys.stderr,
        )
        return 2
    try:
        file = read_node_file(args.config)
        spec = read_network_genesis(file)
        file.data_dir.mkdir(parents=True, exist_ok=True)
    except NodeSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {args.config}: data_dir: cannot be made: {exc.strerror}", file=sys.stderr)
        return 2
    config = node_config(file, spec)
    # -- disaster recovery (docs/recovery.md) --
    if args.recover:
        from .recovery_cli import announce_recovery
        from .recovery_mode import recover

        recovering = recover(config, file.rpc, lambda facts: announce_recovery(args.json, facts))
        if recovering is not None:
            return recovering
    return serve(config, file.rpc, lambda node, rpc_url: _announce(args.json, file, node, rpc_url))


def _announce(as_json: bool, file: NodeFile, node: Node, rpc_url: str) -> None:
    from eth_utils import to_checksum_address

    facts = {
        "rpcUrl": rpc_url,
        "nodeAddress": to_checksum_address(node.enclave.node_keys().address),
        "p2p": None if file.p2p is None else f"{file.p2p[0]}:{file.p2p[1]}",
        "chainId": node.params.chain_id,
        "dataDir": str(file.data_dir),
    }
    if as_json:
        print(json.dumps(facts), flush=True)
        return
    lines = [
        "",
        "Conclave node",
        "=============",
        "",
        f"Node address: {facts['nodeAddress']}",
        f"Chain id:     {facts['chainId']}",
        f"Data:         {file.data_dir}" + (" (ledger: database URL)" if file.database_url else ""),
        f"p2p:          {facts['p2p'] or 'off (this network has one validator)'}",
        f"Listening on {rpc_url}",
        "",
    ]
    print("\n".join(lines), flush=True)
