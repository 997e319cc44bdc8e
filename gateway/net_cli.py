"""`conclave net`: a local network of validators on this machine, each its own `conclave node`
process on 127.0.0.1 (`up`, `down`, `status`).

A network lives in one folder:

    network.json            what `up` made: chain id, ports, each node's address
    attestation-root.bin    the emulated platform vendor's root key, shared by every node
    genesis.json            the genesis document naming every validator
    nodeI/node.toml         node I's config (`conclave node --config`)
    nodeI/node.log          its output;  nodeI/node.pid  its process id while it runs
    nodeI/enclave/, nodeI/ledger.sqlite   its keys and its ledger

Node I serves JSON-RPC on BASE+I and its validator transport on BASE+100+I. Node 0 starts
first; the others join it (they fetch the network's ledger secrets from it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evm_runtime.defaults import DEFAULT_CHAIN_ID

FORMAT = "conclave-net/1"
NETWORK_FILE = "network.json"
ROOT_FILE = "attestation-root.bin"
GENESIS_FILE = "genesis.json"
HOST = "127.0.0.1"
P2P_OFFSET = 100
"""Node I's transport listens on the base port + P2P_OFFSET + I."""
MAX_VALIDATORS = P2P_OFFSET
DEFAULT_VALIDATORS = 4
DEFAULT_BASE_PORT = 8545
DEFAULT_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
"""Seconds a node has to stop after SIGTERM before it is killed."""
KILL_WAIT = 5.0
"""Seconds to wait for a killed node to be gone."""
LOG_TAIL_LINES = 8

NET_EPILOG = """\
examples:
  conclave net up                              four validators on ports 8545-8548 (p2p 8645-8648)
  conclave net up --validators 7 --base-port 9000 --dir ./net7
  conclave net status                          each node's head block, round and peers
  conclave net down                            stop them; `net up` starts them again

Every node runs its own process (and its enclave's), logs to DIR/nodeI/node.log, and keeps
its ledger in DIR/nodeI. The test mnemonic's accounts are funded as on `conclave dev`, and
the first of them is the consortium's only member. docs/network.md says more.
"""


class NetError(Exception):
    """Why a `conclave net` command failed, and what to do; exit status 1."""


@dataclass(frozen=True)
class NetNode:
    """One validator of a local network."""

    index: int
    address: str
    rpc_port: int
    p2p_port: int
    folder: Path

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def rpc_url(self) -> str:
        return f"http://{HOST}:{self.rpc_port}"

    @property
    def p2p(self) -> str:
        return f"{HOST}:{self.p2p_port}"

    @property
    def config_path(self) -> Path:
        return self.folder / "node.toml"

    @property
    def log_path(self) -> Path:
        return self.folder / "node.log"

    @property
    def pid_path(self) -> Path:
        return self.folder / "node.pid"


@dataclass(frozen=True)
class Network:
    """A local network, as its folder's network.json records it."""

    folder: Path
    chain_id: int
    base_port: int
    enclave_mode: str
    nodes: tuple[NetNode, ...]

    @classmethod
    def load(cls, folder: Path) -> Network | None:
        """The network in `folder`; None if there is none."""
        path = folder / NETWORK_FILE
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text())
            if record.get("format") != FORMAT:
                raise ValueError(f"format {record.get('format')!r}, not {FORMAT!r}")
            nodes = tuple(
                NetNode(n["index"], n["address"], n["rpcPort"], n["p2pPort"], folder / f"node{n['index']}")
                for n in record["nodes"]
            )
            return cls(folder, record["chainId"], record["basePort"], record["enclave"], nodes)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NetError(f"{path} cannot be read ({exc}): remove {folder} to start over") from None

    def save(self) -> None:
        record = {
            "format": FORMAT,
            "chainId": self.chain_id,
            "basePort": self.base_port,
            "enclave": self.enclave_mode,
            "nodes": [
                {"index": n.index, "address": n.address, "rpcPort": n.rpc_port, "p2pPort": n.p2p_port}
                for n in self.nodes
            ],
        }
        (self.folder / NETWORK_FILE).write_text(json.dumps(record, indent=2) + "\n")


# -- making a network ---------------------------------------------------------------------


def ports_of(validators: int, base_port: int) -> list[tuple[int, int]]:
    """Each node's (JSON-RPC port, transport port)."""
    return [(base_port + i, base_port + P2P_OFFSET + i) for i in range(validators)]


def prepare_network(
    folder: Path, validators: int, base_port: int, chain_id: int, enclave_mode: str
) -> Network:
    """Make the network's files in `folder` (which must be empty): one shared attestation
    root, each node's keys and config, the genesis document naming them all."""
    from enclave.platform import AttestationRoot

    from .node_cli import make_keys

    folder.mkdir(parents=True, exist_ok=True)
    root = AttestationRoot.create()
    root_path = folder / ROOT_FILE
    root_path.write_bytes(root.to_bytes())
    root_path.chmod(0o600)
    nodes = []
    for index, (rpc_port, p2p_port) in enumerate(ports_of(validators, base_port)):
        node_folder = folder / f"node{index}"
        keys = make_keys(node_folder, root_path).to_json()
        nodes.append(NetNode(index, keys["address"], rpc_port, p2p_port, node_folder))
    network = Network(folder, chain_id, base_port, enclave_mode, tuple(nodes))
    _write_genesis(network, "0x" + root.public_key.hex())
    for node in nodes:
        node.config_path.write_text(_config_text(network, node))
    network.save()  # last: a folder without it holds no network
    return network


def _write_genesis(network: Network, attestation_root: str) -> None:
    """The genesis document: the dev accounts funded, the first one the only member, every
    node a validator, one fixed timestamp (so that every node makes the same block)."""
    from .dev_accounts import DEFAULT_BALANCE_ETH, WEI_PER_ETH, derive_accounts
    from .genesis_document import genesis_document, read_genesis

    accounts = derive_accounts()
    document = {
        "chainId": network.chain_id,
        "timestamp": int(time.time()),
        "alloc": {a.address: {"balance": str(DEFAULT_BALANCE_ETH * WEI_PER_ETH)} for a in accounts},
        "consortium": {
            "members": [{"address": accounts[0].address, "name": "dev member"}],
            "validators": [{"address": n.address, "endpoint": n.p2p} for n in network.nodes],
            "attestationRoots": [attestation_root],
        },
    }
    written = genesis_document(read_genesis(document))
    (network.folder / GENESIS_FILE).write_text(json.dumps(written, indent=2) + "\n")


def _config_text(network: Network, node: NetNode) -> str:
    """Node `node`'s config file (`conclave node --config`)."""
    lines = [
        "# A validator of the local network `conclave net up` made (`conclave node --help`).",
        'data_dir = "."',
        f"genesis = {json.dumps('../' + GENESIS_FILE)}",
    ]
    if node.index > 0:
        lines.append(f"join = {json.dumps(network.nodes[0].rpc_url)}")
    lines += [
        "",
        "[rpc]",
        f"host = {json.dumps(HOST)}",
        f"port = {node.rpc_port}",
        "",
        "[p2p]",
        f"host = {json.dumps(HOST)}",
        f"port = {node.p2p_port}",
        "",
        "[consensus]",
        "round_timeout = 1.0",
        "",
        "[enclave]",
        f"mode = {json.dumps(network.enclave_mode)}",
        "",
    ]
    return "\n".join(lines)


# -- processes ----------------------------------------------------------------------------


def node_pid(node: NetNode) -> int | None:
    """The pid of `node`'s running process; None if it is not running (a stale pid file is
    removed)."""
    try:
        pid = int(node.pid_path.read_text().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid, node.config_path):
        return pid
    node.pid_path.unlink(missing_ok=True)
    return None


def _alive(pid: int, config_path: Path) -> bool:
    """Whether `pid` runs, and runs the node of `config_path` (a pid is reused once freed)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child, exited: reaped
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not ours
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # no procfs: trust the pid
        return True
    try:
        if (proc / "stat").read_text().rpartition(")")[2].split()[0] == "Z":
            return False  # exited, waiting for its parent
        return str(config_path) in (proc / "cmdline").read_text().replace("\0", " ")
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class Launched:
    """A node process `up` started, and where its log stood then."""

    process: subprocess.Popen[bytes]
    log_offset: int


def _launch(node: NetNode) -> Launched:
    """Start `conclave node` for `node`, detached (its own session), output to its log.

    Not in the node's folder, and with -P: `python -m` would import that folder's `enclave/`
    (the node's keys) as the `enclave` package."""
    with open(node.log_path, "ab") as log:
        offset = log.tell()
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", "gateway.cli", "node", "--config", str(node.config_path)],
            cwd=node.folder.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    node.pid_path.write_text(f"{process.pid}\n")
    return Launched(process, offset)


def _log_tail(node: NetNode, since: int) -> str:
    """The last lines `node` logged since offset `since`, to quote in an error."""
    try:
        with open(node.log_path, "rb") as log:
            log.seek(since)
            lines = log.read().decode(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        lines = []
    if not lines:
        return " it wrote nothing yet"
    return " it ends:" + "".join(f"\n  | {line}" for line in lines)


def _healthy(client: Any, node: NetNode) -> bool:
    import httpx

    try:
        answer = client.get(f"{node.rpc_url}/node/status")
    except httpx.HTTPError:
        return False
    try:
        return bool(answer.status_code == 200 and answer.json().get("status") == "healthy")
    except (ValueError, AttributeError):
        return False


def wait_until_healthy(started: dict[NetNode, Launched], timeout: float, say: Callable[[str], None]) -> None:
    """Wait until every started node's /node/status answers healthy; NetError if one exits or
    the time runs out."""
    import httpx

    begun = time.monotonic()
    waiting = dict(started)
    with httpx.Client(timeout=2.0) as client:
        while waiting:
            for node, launched in list(waiting.items()):
                if _healthy(client, node):
                    say(f"{node.name} is up: {node.rpc_url} ({time.monotonic() - begun:.1f} s)")
                    del waiting[node]
                elif launched.process.poll() is not None:
                    raise NetError(
                        f"{node.name} exited with status {launched.process.returncode} before it "
                        f"answered; see its log, {node.log_path};{_log_tail(node, launched.log_offset)}"
                    )
            if waiting and time.monotonic() - begun > timeout:
                late, launched = min(waiting.items(), key=lambda item: item[0].index)
                raise NetError(
                    f"{late.name} did not answer {late.rpc_url}/node/status within {timeout:g} s "
                    f"(--timeout gives it longer): see its log, {late.log_path};"
                    f"{_log_tail(late, launched.log_offset)}"
                )
            time.sleep(0.1)


def stop_nodes(
    nodes: Iterable[NetNode], timeout: float = STOP_TIMEOUT
) -> tuple[list[NetNode], list[NetNode]]:
    """SIGTERM each running node, wait, SIGKILL (with its enclave) what is left after
    `timeout`; (the nodes stopped, those that were not running). Pid files are removed."""
    running: dict[NetNode, int] = {}
    idle: list[NetNode] = []
    for node in nodes:
        pid = node_pid(node)
        if pid is None:
            idle.append(node)
            continue
        running[node] = pid
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(_alive(pid, n.config_path) for n, pid in running.items()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for node, pid in running.items():
        if _alive(pid, node.config_path):
            try:
                os.killpg(pid, signal.SIGKILL)  # its session: the node and its enclave process
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + KILL_WAIT
    while any(_alive(pid, n.config_path) for n, pid in running.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for node in running:
        node.pid_path.unlink(missing_ok=True)
    return list(running), idle


def _check_ports_free(ports: Iterable[tuple[int, int]]) -> None:
    """NetError unless every node's (JSON-RPC, transport) port can be listened on."""
    for index, pair in enumerate(ports):
        for port in pair:
            try:
                socket.create_server((HOST, port)).close()
            except OSError as exc:
                raise NetError(
                    f"{HOST}:{port} (node{index}) is not free ({exc.strerror}): stop what uses it, "
                    "or make the network in another --dir with another --base-port"
                ) from None


# -- commands -----------------------------------------------------------------------------


def add_net_commands(commands: Any, default_dir: Path) -> None:
    from .cli import _bounded_int, _chain_id, _positive_float  # at call time: cli imports this module

    net = commands.add_parser(
        "net",
        help="run a local network of validators on this machine: up, down, status",
        description="A local network of validators, each its own `conclave node` process on 127.0.0.1.",
        epilog=NET_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = net.add_subparsers(dest="net_command", metavar="ACTION", required=True)

    def action(name: str, help: str, run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        command = actions.add_parser(name, help=help, description=help)
        command.add_argument(
            "--dir",
            type=lambda text: Path(text).expanduser().absolute(),  # the nodes run elsewhere
            default=default_dir,
            help="the network's folder (default: %(default)s)",
        )
        command.set_defaults(run=run)
        return command

    up = action("up", "make a local network (or take the stopped one in --dir) and start it", run_up)
    up.add_argument(
        "--validators",
        type=_bounded_int(1, MAX_VALIDATORS, "the number of validators"),
        help=f"how many validators a new network has (default: {DEFAULT_VALIDATORS})",
    )
    up.add_argument(
        "--base-port",
        type=_bounded_int(1, 65_535 - P2P_OFFSET - MAX_VALIDATORS, "the base port"),
        help=f"node I serves JSON-RPC on BASE+I, its transport on BASE+{P2P_OFFSET}+I "
        f"(default: {DEFAULT_BASE_PORT})",
    )
    up.add_argument(
        "--chain-id", type=_chain_id, help=f"a new network's EIP-155 chain id (default: {DEFAULT_CHAIN_ID})"
    )
    up.add_argument(
        "--enclave",
        choices=["process", "in-process"],
        help="where a new network's enclaves run (default: each in its own process)",
    )
    up.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        help="seconds the nodes have to answer (default: %(default)s)",
    )
    up.add_argument("--json", action="store_true", help="print the network as one JSON object")
    action("down", "stop the local network's nodes", run_down)
    status = action("status", "show each node: running, head block, round, peers", run_status)
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _failed(exc: NetError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1


def _network_in(args: argparse.Namespace) -> Network:
    network = Network.load(args.dir)
    if network is None:
        raise NetError(f"no network in {args.dir}: make one with `conclave net up --dir {args.dir}`")
    return network


def _reuse(args: argparse.Namespace) -> Network | None:
    """The stopped network in --dir, if there is one (and the flags agree with it)."""
    network = Network.load(args.dir)
    if network is None:
        if args.dir.exists() and any(args.dir.iterdir()):
            raise NetError(f"{args.dir} is not empty and holds no network: pass another --dir")
        return None
    running = [n.name for n in network.nodes if node_pid(n) is not None]
    if len(running) == len(network.nodes):
        raise NetError(
            f"the network in {args.dir} is running already ({', '.join(running)}): "
            f"`conclave net status --dir {args.dir}` shows it, `conclave net down --dir {args.dir}` stops it"
        )
    held = {
        "--validators": (args.validators, len(network.nodes)),
        "--base-port": (args.base_port, network.base_port),
        "--chain-id": (args.chain_id, network.chain_id),
        "--enclave": (args.enclave, network.enclave_mode),
    }
    for flag, (asked, has) in held.items():
        if asked is not None and asked != has:
            raise NetError(
                f"the network in {args.dir} has {flag} {has}, not {asked}: leave {flag} out to start "
                "it again, or pass another --dir for a new network"
            )
    return network


def run_up(args: argparse.Namespace) -> int:
    from .node_cli import NodeSetupError

    try:
        network = _reuse(args)
        if network is None:
            validators = args.validators or DEFAULT_VALIDATORS
            base_port = args.base_port or DEFAULT_BASE_PORT
            _check_ports_free(ports_of(validators, base_port))
            _say(f"making a network of {validators} validators in {args.dir}")
            made_folder = not args.dir.exists()
            try:
                network = prepare_network(
                    args.dir,
                    validators,
                    base_port,
                    args.chain_id or DEFAULT_CHAIN_ID,
                    args.enclave or "process",
                )
            except BaseException:  # the folder was empty: leave it so
                shutil.rmtree(args.dir, ignore_errors=True)
                if not made_folder:
                    args.dir.mkdir()
                raise
            _start(network, args.timeout)
        else:
            stopped = [n for n in network.nodes if node_pid(n) is None]
            _check_ports_free((n.rpc_port, n.p2p_port) for n in stopped)
            _say(f"starting {', '.join(n.name for n in stopped)} of the network in {args.dir} again")
            start_nodes(network, stopped, args.timeout)
    except NodeSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NetError as exc:
        return _failed(exc)
    except KeyboardInterrupt:
        _say("interrupted: nothing is left running")
        return 130
    _print_up(network, args.json)
    return 0


def _start(network: Network, timeout: float) -> None:
    """Start node 0, wait until it answers, then the others (which join it), and wait for
    them; on failure every node started is stopped."""
    first, *others = network.nodes
    try:
        _say(f"starting {first.name}")
        wait_until_healthy({first: _launch(first)}, timeout, _say)
        if others:
            _say(f"starting {', '.join(n.name for n in others)} (joining {first.name})")
            wait_until_healthy({n: _launch(n) for n in others}, timeout, _say)
    except BaseException:
        stopped, _ = stop_nodes(network.nodes)
        if stopped:
            _say(f"stopped {', '.join(n.name for n in stopped)}")
        raise


def start_nodes(network: Network, stopped: list[NetNode], timeout: float) -> None:
    """Start the stopped nodes of a network (all of them, or those that died while the
    others run: they catch up from them); on failure, those started are stopped again."""
    if len(stopped) == len(network.nodes):
        _start(network, timeout)
        return
    try:
        wait_until_healthy({n: _launch(n) for n in stopped}, timeout, _say)
    except BaseException:
        stop_nodes(stopped)
        raise


def _print_up(network: Network, as_json: bool) -> None:
    from .dev_accounts import DEFAULT_BALANCE_ETH, derive_accounts

    pids = {n: node_pid(n) for n in network.nodes}
    accounts = derive_accounts()
    if as_json:
        print(
            json.dumps(
                {
                    "dir": str(network.folder),
                    "chainId": network.chain_id,
                    "nodes": [
                        {
                            "index": n.index,
                            "address": n.address,
                            "rpcUrl": n.rpc_url,
                            "p2p": n.p2p,
                            "pid": pids[n],
                            "log": str(n.log_path),
                        }
                        for n in network.nodes
                    ],
                    "accounts": [{"address": a.address, "privateKey": a.private_key} for a in accounts],
                }
            ),
            flush=True,
        )
        return
    rows = [["node", "address", "RPC URL", "p2p", "pid"]]
    rows += [[n.name, n.address, n.rpc_url, n.p2p, str(pids[n])] for n in network.nodes]
    print(_table(rows))
    print(
        f"\nchain id {network.chain_id}; the test mnemonic's {len(accounts)} accounts hold "
        f"{DEFAULT_BALANCE_ETH:,} ETH each (as on `conclave dev`), {accounts[0].address} is the member"
    )
    print(f"logs: {network.folder}/nodeI/node.log; stop: conclave net down --dir {network.folder}")


def run_down(args: argparse.Namespace) -> int:
    try:
        network = _network_in(args)
    except NetError as exc:
        return _failed(exc)
    stopped, idle = stop_nodes(network.nodes)
    if stopped:
        print(f"stopped {', '.join(n.name for n in stopped)}")
    if idle:
        print(f"not running: {', '.join(n.name for n in idle)}")
    return 0


def _rpc(client: Any, url: str, method: str, params: Sequence[object] = ()) -> Any:
    """The result of one JSON-RPC call; None when there is none (an error, no answer)."""
    import httpx

    try:
        answer = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        return answer.json().get("result")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def node_status(client: Any, node: NetNode) -> dict[str, Any]:
    """What one node says of itself: running, head, consensus (what it answers)."""
    pid = node_pid(node)
    status: dict[str, Any] = {
        "index": node.index,
        "address": node.address,
        "rpcUrl": node.rpc_url,
        "p2p": node.p2p,
        "pid": pid,
        "running": pid is not None,
        "head": None,
        "consensus": None,
    }
    if pid is None:
        return status
    block = _rpc(client, node.rpc_url, "eth_getBlockByNumber", ["latest", False])
    if isinstance(block, dict):
        status["head"] = {"number": int(block["number"], 16), "hash": block["hash"]}
    status["consensus"] = _rpc(client, node.rpc_url, "conclave_consensusStatus")
    return status


def _peers(consensus: Any) -> str:
    """'connected/known' from what conclave_consensusStatus says of the peers."""
    peers = consensus.get("peers") if isinstance(consensus, dict) else None
    if isinstance(peers, dict):
        connected = sum(1 for p in peers.values() if not isinstance(p, dict) or p.get("connected", True))
        return f"{connected}/{len(peers)}"
    if isinstance(peers, list | int):
        return str(len(peers) if isinstance(peers, list) else peers)
    return "-"


def run_status(args: argparse.Namespace) -> int:
    import httpx

    try:
        network = _network_in(args)
    except NetError as exc:
        return _failed(exc)
    with httpx.Client(timeout=3.0) as client:
        nodes = [node_status(client, n) for n in network.nodes]
    answering = all(n["head"] is not None for n in nodes)
    if args.json:
        print(json.dumps({"dir": str(network.folder), "chainId": network.chain_id, "nodes": nodes}))
        return 0 if answering else 1
    rows = [["node", "state", "pid", "block", "hash", "height", "round", "peers"]]
    for n in nodes:
        head, consensus = n["head"], n["consensus"] if isinstance(n["consensus"], dict) else {}
        state = "stopped" if not n["running"] else ("running" if head else "not answering")
        rows.append(
            [
                f"node{n['index']}",
                state,
                str(n["pid"] or "-"),
                str(head["number"]) if head else "-",
                f"{head['hash'][:10]}…{head['hash'][-4:]}" if head else "-",
                str(consensus.get("height", "-")),
                str(consensus.get("round", "-")),
                _peers(consensus),
            ]
        )
    print(_table(rows))
    return 0 if answering else 1


def _table(rows: list[list[str]]) -> str:
    """`rows` in aligned columns, the first row the heading."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)
