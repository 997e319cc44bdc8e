"""What consensus costs: ERC-20 transfer throughput and latency on 1 validator against 4.

    python -m bench.consensus [--transfers N] [--senders K] [--batch [SIZE]]
                              [--latency-transfers L] [--latency-pace S] [--validators V]
                              [--json] [--keep-logs DIR]

One run makes two local networks on this machine, one after the other, with
`conclave net up --validators 1` and `--validators V` (4 by default): every node its own
`conclave node` process (and enclave process), in a temporary folder, on free ports, so
both configurations run the same code and process layout. On each it does this:

1. Set-up (untimed): `bench.erc20_throughput.set_up` through node 0: dev account 0
   deploys ConclaveToken and gives each of the K senders (dev accounts 1..K) a token
   balance; N `transfer`s are pre-signed, spread evenly over the senders.
2. Throughput (timed): one client thread per sender (`bench.erc20_throughput.Sender`)
   posts its transfers in nonce order, single requests or JSON-RPC batches, to node
   `sender % V`, so the load is spread over every node's RPC URL (a node forwards what it
   receives to the proposer). The main thread polls node 0 until the blocks after the
   set-up hold N transactions; the time runs from the first send until then. Every
   receipt is then checked on node 0 (`bench.erc20_throughput.verify`).
3. Latency (timed, light load): L transfers from dev account 0, one at a time, each sent
   to node `i % V` and polled there with eth_getTransactionReceipt until it has a
   receipt before the next is sent (`--latency-pace S`: and at least S seconds after the
   previous one): submit-to-receipt latency, p50 / p90 / p99.
4. Agreement: once every node reports the same head number, their latest block hashes
   must be equal.

CPU time (node and enclave processes, all nodes, during the throughput phase) and peak
resident memory (VmHWM, node plus enclave, per node: the sum and the largest) are read
from /proc; the node pids come from the network folder's pid files. Prints the figures of
both and the ratio of their rates (the goal: V validators reach at least 60% of one): a
table, or one JSON object with `--json` (progress on stderr then). Both networks are
stopped (`conclave net down`) and their folders deleted, however the run ends.

The defaults take two to three minutes on 2 cores. The client shares the machine with the
nodes (and 4 validators share 2 cores), so read the ratio, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx

from bench.common import Progress, cpu_delta, mebibytes, percentiles_ms, progress_printer
from bench.erc20_throughput import (
    AMOUNT,
    MAX_PER_SENDER,
    RECEIPT_TIMEOUT,
    TRANSFER_GAS,
    Sender,
    Setup,
    SignedTx,
    bodies,
    call,
    cpu_seconds,
    fetch_blocks,
    hex_int,
    peak_rss_bytes,
    recipients,
    send_raw,
    set_up,
    sign,
    transfer_data,
    verify,
    wait_for_inclusion,
)
from gateway.dev_accounts import DEFAULT_COUNT, derive_accounts
from gateway.net_cli import HOST, Network, node_pid, ports_of
from tests.support.devnode import REPO_ROOT, DevAccount, DevNode

GOAL = 0.6
"""V validators should reach at least this share of one validator's rate."""
PORT_RANGE = (20_000, 60_000)
UP_ATTEMPTS = 3
"""`net up` is retried on other ports when a port was taken between the check and the start."""
AGREEMENT_TIMEOUT = 30.0


# -- a local network ------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeProcess:
    """One validator's OS processes: the node and, when apart, its enclave."""

    node_pid: int
    enclave_pid: int | None

    @property
    def pids(self) -> list[int]:
        return [self.node_pid] if self.enclave_pid is None else [self.node_pid, self.enclave_pid]

    def named_pids(self, index: int) -> dict[str, int]:
        """{"nodeI": pid, "enclaveI": pid}."""
        named = {f"node{index}": self.node_pid}
        if self.enclave_pid is not None:
            named[f"enclave{index}"] = self.enclave_pid
        return named

    def peak_rss(self) -> int | None:
        """VmHWM of the node plus its enclave in bytes; None where unknown."""
        sizes = [peak_rss_bytes(pid) for pid in self.pids]
        return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)


@dataclass(frozen=True)
class LocalNetwork:
    """A running `conclave net` network: its folder, chain id, RPC URLs and processes."""

    folder: Path
    chain_id: int
    urls: list[str]
    processes: list[NodeProcess]

    @property
    def size(self) -> int:
        return len(self.urls)

    def named_pids(self) -> dict[str, int]:
        """Every process by name: node0, enclave0, node1, ..."""
        return {name: pid for i, p in enumerate(self.processes) for name, pid in p.named_pids(i).items()}

    def cpu_seconds(self) -> dict[str, float | None]:
        """CPU time used so far by each node and enclave process (Linux; None where unknown)."""
        return {name: cpu_seconds(pid) for name, pid in self.named_pids().items()}

    def peak_rss(self) -> list[int | None]:
        return [p.peak_rss() for p in self.processes]


def free_base_port(validators: int) -> int:
    """A base port whose JSON-RPC and transport ports (as `net up` lays them out) are free."""
    for _ in range(100):
        base = random.randrange(*PORT_RANGE)
        try:
            for pair in ports_of(validators, base):
                for port in pair:
                    socket.create_server((HOST, port)).close()
        except OSError:
            continue
        return base
    raise RuntimeError("no free base port found")


def _conclave(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True
    )


def _processes(folder: Path, urls: Sequence[str]) -> list[NodeProcess]:
    """Each node's pid (from its pid file) and its enclave's (from /node/status)."""
    network = Network.load(folder)
    if network is None:
        raise RuntimeError(f"no network in {folder}")
    processes = []
    for node, url in zip(network.nodes, urls, strict=True):
        pid = node_pid(node)
        if pid is None:
            raise RuntimeError(f"{node.name} is not running: see {node.log_path}")
        enclave = httpx.get(url + "/node/status", timeout=30).json()["enclave"].get("pid")
        processes.append(NodeProcess(pid, int(enclave) if enclave is not None else None))
    return processes


@contextmanager
def local_network(
    validators: int, progress: Progress, keep_logs: Path | None = None
) -> Iterator[LocalNetwork]:
    """`conclave net up --validators V` in a temporary folder on free ports; `net down`
    and the folder deleted afterwards (the node logs copied to `keep_logs` first)."""
    with tempfile.TemporaryDirectory(prefix="conclave-bench-net-") as parent:
        folder = Path(parent) / "net"
        try:
            for attempt in range(UP_ATTEMPTS):
                base = free_base_port(validators)
                progress(f"conclave net up --validators {validators} --base-port {base} ...")
                up = _conclave(
                    "net",
                    "up",
                    "--validators",
                    str(validators),
                    "--base-port",
                    str(base),
                    "--dir",
                    str(folder),
                    "--json",
                )
                if up.returncode == 0:
                    break
                if "is not free" not in up.stderr or attempt == UP_ATTEMPTS - 1:
                    raise RuntimeError(f"conclave net up failed ({up.returncode}):\n{up.stderr}")
            started = json.loads(up.stdout)
            urls = [node["rpcUrl"] for node in started["nodes"]]
            yield LocalNetwork(folder, started["chainId"], urls, _processes(folder, urls))
        finally:
            if (folder / "network.json").exists():
                down = _conclave("net", "down", "--dir", str(folder))
                if down.returncode != 0:
                    progress(f"conclave net down failed ({down.returncode}): {down.stderr}")
            if keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                for log in sorted(folder.glob("node*/node.log")):
                    shutil.copy(log, keep_logs / f"v{validators}-{log.parent.name}.log")


def dev_node_view(network: LocalNetwork) -> DevNode:
    """Node 0 as `bench.erc20_throughput.set_up` sees a node: it reads only `rpc_url`,
    `chain_id` and `accounts` (the test mnemonic's, which the network's genesis funds)."""
    accounts = [DevAccount(a.address, a.private_key) for a in derive_accounts()]
    view = argparse.Namespace(rpc_url=network.urls[0], chain_id=network.chain_id, accounts=accounts)
    return cast(DevNode, view)


# -- throughput -----------------------------------------------------------------------------


@dataclass
class Throughput:
    transfers: int
    seconds: float
    send_seconds: float
    blocks: list[tuple[int, int]]  # (number, transaction count) of the blocks after set-up
    cpu_by_process: dict[str, float | None]  # node0, enclave0, ...: CPU seconds in the phase
    retries: int

    @property
    def cpu_seconds(self) -> float | None:
        times = list(self.cpu_by_process.values())
        return None if any(t is None for t in times) else sum(t or 0.0 for t in times)

    def cpu_of(self, kind: str) -> float | None:
        """CPU seconds of every process whose name starts with `kind` (node, enclave)."""
        times = [t for name, t in self.cpu_by_process.items() if name.startswith(kind)]
        return None if not times or any(t is None for t in times) else sum(t or 0.0 for t in times)

    def figures(self) -> dict[str, Any]:
        sizes = [count for _, count in self.blocks]
        return {
            "tps": self.transfers / self.seconds,
            "seconds": self.seconds,
            "send_tps": self.transfers / self.send_seconds,
            "blocks": len(sizes),
            "avg_tx_per_block": sum(sizes) / len(sizes),
            "max_tx_per_block": max(sizes),
            "cpu_seconds": self.cpu_seconds,
            "cpu_seconds_nodes": self.cpu_of("node"),
            "cpu_seconds_enclaves": self.cpu_of("enclave"),
            "cpu_seconds_by_process": self.cpu_by_process,
            "cpu_ms_per_transfer": (
                self.cpu_seconds * 1000 / self.transfers if self.cpu_seconds is not None else None
            ),
            "pool_full_retries": self.retries,
        }


def run_throughput(network: LocalNetwork, setup: Setup, batch: int, poll_interval: float) -> Throughput:
    """Send every transfer, sender i to node i % V, and wait until node 0's blocks hold them."""
    url = network.urls[0]
    gate = threading.Barrier(len(setup.transfers) + 1)
    threads = [
        Sender(network.urls[i % network.size], bodies(own, batch), gate)
        for i, own in enumerate(setup.transfers)
    ]
    for thread in threads:
        thread.start()
    with httpx.Client(timeout=120) as client:
        cpu_before = network.cpu_seconds()
        inclusion = wait_for_inclusion(client, url, setup, threads, gate, poll_interval)
        cpu_after = network.cpu_seconds()
    first = min(t.first_send for t in threads)
    return Throughput(
        transfers=sum(len(own) for own in setup.transfers),
        seconds=inclusion.done - first,
        send_seconds=max(t.finished for t in threads) - first,
        blocks=inclusion.blocks,
        cpu_by_process={name: cpu_delta(cpu_before[name], cpu_after[name]) for name in cpu_before},
        retries=sum(t.retries for t in threads),
    )


# -- latency --------------------------------------------------------------------------------


def latency_transfers(network: LocalNetwork, setup: Setup, senders: int, count: int) -> list[SignedTx]:
    """`count` transfers from dev account 0, after its set-up nonces (deploy, one per sender)."""
    key = derive_accounts()[0].private_key
    targets = recipients()
    return [
        sign(
            key,
            network.chain_id,
            1 + senders + i,
            setup.token,
            transfer_data(targets[i % len(targets)], AMOUNT),
            TRANSFER_GAS,
        )
        for i in range(count)
    ]


def measure_latency(
    network: LocalNetwork, transfers: Sequence[SignedTx], poll_interval: float, pace: float = 0.0
) -> list[float]:
    """Submit-to-receipt seconds of each transfer, sent one at a time to node i % V and
    polled there until it has a receipt; the next is sent then, or `pace` seconds after
    this one was, whichever is later."""
    clients = [httpx.Client(timeout=60) for _ in network.urls]
    latencies = []
    try:
        for i, tx in enumerate(transfers):
            url, client = network.urls[i % network.size], clients[i % network.size]
            started = time.perf_counter()
            send_raw(client, url, tx)
            while (receipt := call(client, url, "eth_getTransactionReceipt", [tx.hash])) is None:
                if time.perf_counter() - started > RECEIPT_TIMEOUT:
                    raise RuntimeError(f"transfer {tx.hash} has no receipt on {url} after {RECEIPT_TIMEOUT}s")
                time.sleep(poll_interval)
            latencies.append(time.perf_counter() - started)
            if receipt["status"] != "0x1":
                raise RuntimeError(f"transfer {tx.hash} failed: {receipt}")
            time.sleep(max(0.0, started + pace - time.perf_counter()))
    finally:
        for client in clients:
            client.close()
    return latencies


# -- agreement ------------------------------------------------------------------------------


def agreement(network: LocalNetwork) -> dict[str, Any]:
    """Once every node reports the same head number: whether their latest hashes agree."""
    deadline = time.monotonic() + AGREEMENT_TIMEOUT
    with httpx.Client(timeout=30) as client:
        while True:
            heads = [call(client, url, "eth_getBlockByNumber", ["latest", False]) for url in network.urls]
            numbers = {hex_int(h["number"]) for h in heads}
            if len(numbers) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    hashes = [h["hash"] for h in heads]
    return {
        "agree": len(numbers) == 1 and len(set(hashes)) == 1,
        "heads": [{"number": hex_int(h["number"]), "hash": h["hash"]} for h in heads],
    }


# -- one configuration ----------------------------------------------------------------------


def measure(validators: int, args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    """Every figure of one network of `validators` nodes."""
    with local_network(validators, progress, args.keep_logs) as network:
        node0 = network.urls[0]
        with httpx.Client(timeout=120) as client:
            progress(
                f"deploying ConclaveToken, funding {args.senders} senders, signing {args.transfers} transfers"
            )
            setup = set_up(dev_node_view(network), client, args.transfers, args.senders)
            probes = latency_transfers(network, setup, args.senders, args.latency_transfers)
            progress(f"sending {args.transfers} transfers to {network.size} node(s) ...")
            load = run_throughput(network, setup, args.batch, args.poll_interval)
            progress(f"all included in {len(load.blocks)} blocks; checking every receipt on node 0 ...")
            verify(client, node0, setup, fetch_blocks(client, node0, setup.setup_head + len(load.blocks)))
        progress(f"latency: {len(probes)} transfers, one at a time ...")
        latencies = measure_latency(network, probes, args.latency_poll, args.latency_pace)
        agreed = agreement(network)
        rss = network.peak_rss()
    known = [r for r in rss if r is not None]
    return {
        "validators": validators,
        **load.figures(),
        "latency_ms": percentiles_ms(latencies),
        "latency_transfers": len(latencies),
        "latency_pace_seconds": args.latency_pace,
        "peak_rss_bytes_per_node": rss,
        "peak_rss_bytes_sum": sum(known) if len(known) == len(rss) else None,
        "peak_rss_bytes_max": max(known) if known else None,
        "agreement": agreed,
    }


# -- the report -----------------------------------------------------------------------------


def _cells(*values: str) -> str:
    label, *rest = values
    return (f"  {label:<38}" + "".join(f"{v:>16}" for v in rest)).rstrip()


def report_table(r: dict[str, Any]) -> str:
    one, many = r["one"], r["many"]
    v = many["validators"]
    mode = f"JSON-RPC batches of {r['batch']}" if r["batch"] else "single requests"

    def cpu(c: dict[str, Any], which: str = "") -> str:
        seconds = c[f"cpu_seconds{which}"]
        return "n/a" if seconds is None else f"{seconds:.1f} s"

    def cpu_ms(c: dict[str, Any]) -> str:
        return "n/a" if c["cpu_ms_per_transfer"] is None else f"{c['cpu_ms_per_transfer']:.2f}"

    def ratio(key: str) -> str:
        return f"{many[key] / one[key]:.2f}x" if one.get(key) and many.get(key) is not None else ""

    def lat(c: dict[str, Any], q: str) -> str:
        return f"{c['latency_ms'][q]:.1f}"

    def agree(c: dict[str, Any]) -> str:
        heads = c["agreement"]["heads"]
        return f"{'yes' if c['agreement']['agree'] else 'NO'} (#{heads[0]['number']})"

    pace = f", {one['latency_pace_seconds']:g} s apart" if one["latency_pace_seconds"] else ""
    lines = [
        f"Consensus: {r['transfers']:,} ERC-20 transfers from {r['senders']} senders ({mode}), "
        f"1 validator against {v}",
        "",
        _cells("", "1 validator", f"{v} validators", f"{v} / 1"),
        _cells(
            "throughput, first send -> all included",
            f"{one['tps']:,.1f} tx/s",
            f"{many['tps']:,.1f} tx/s",
            f"{r['ratio']:.1%}",
        ),
        _cells(
            "  until every send was answered",
            f"{one['send_tps']:,.1f} tx/s",
            f"{many['send_tps']:,.1f} tx/s",
            ratio("send_tps"),
        ),
        _cells(
            "  blocks; transactions per block mean",
            f"{one['blocks']}; {one['avg_tx_per_block']:.1f}",
            f"{many['blocks']}; {many['avg_tx_per_block']:.1f}",
        ),
        _cells("  CPU, all processes (node + enclave)", cpu(one), cpu(many), ratio("cpu_seconds")),
        _cells("    node processes", cpu(one, "_nodes"), cpu(many, "_nodes"), ratio("cpu_seconds_nodes")),
        _cells(
            "    enclave processes",
            cpu(one, "_enclaves"),
            cpu(many, "_enclaves"),
            ratio("cpu_seconds_enclaves"),
        ),
        _cells("  CPU ms per transfer", cpu_ms(one), cpu_ms(many), ratio("cpu_ms_per_transfer")),
        _cells(f"latency: {one['latency_transfers']} transfers one by one{pace}"),
        _cells("  p50 ms", lat(one, "p50"), lat(many, "p50")),
        _cells("  p90 ms", lat(one, "p90"), lat(many, "p90")),
        _cells("  p99 ms", lat(one, "p99"), lat(many, "p99")),
        _cells(
            "peak RSS, node + enclave: sum",
            mebibytes(one["peak_rss_bytes_sum"]),
            mebibytes(many["peak_rss_bytes_sum"]),
        ),
        _cells("  largest node", mebibytes(one["peak_rss_bytes_max"]), mebibytes(many["peak_rss_bytes_max"])),
        _cells("latest block hash the same on every node", agree(one), agree(many)),
        "",
        f"  {v} validators reach {r['ratio']:.1%} of 1 validator's rate: goal >= {GOAL:.0%} "
        f"{'met' if r['goal_met'] else 'NOT met'}",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.consensus",
        description="ERC-20 transfer throughput and latency of a local network of 1 validator "
        "against one of several (conclave net up), in one run.",
    )
    parser.add_argument("--transfers", "-n", type=int, default=2000, help="transfers (default: %(default)s)")
    parser.add_argument(
        "--senders",
        "-k",
        type=int,
        default=8,
        help="sending accounts, one thread each (default: %(default)s)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        nargs="?",
        const=100,
        default=0,
        metavar="SIZE",
        help="send JSON-RPC batches of SIZE transactions (default SIZE: 100) instead of single requests",
    )
    parser.add_argument(
        "--validators",
        type=int,
        default=4,
        help="validators of the network compared with 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-transfers",
        type=int,
        default=100,
        help="transfers sent one at a time for latency (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-pace",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="send the latency transfers at most one per SECONDS (default: each once the previous "
        "has its receipt)",
    )
    parser.add_argument(
        "--latency-poll",
        type=float,
        default=0.005,
        metavar="SECONDS",
        help="how often a receipt is polled for (default: %(default)s)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.02,
        metavar="SECONDS",
        help="how often the head is polled in the throughput phase (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--keep-logs",
        type=Path,
        metavar="DIR",
        help="copy every node's log to DIR/vV-nodeI.log before the network's folder is deleted",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.transfers, args.senders, args.latency_transfers) < 1:
        raise SystemExit("--transfers, --senders and --latency-transfers must be positive")
    if args.senders >= DEFAULT_COUNT:
        raise SystemExit(f"--senders: the network funds {DEFAULT_COUNT} accounts, account 0 deploys")
    if args.senders > args.transfers:
        raise SystemExit("--senders must not exceed --transfers")
    if -(-args.transfers // args.senders) > MAX_PER_SENDER:
        raise SystemExit(
            f"at most {MAX_PER_SENDER} transfers per sender can wait in the pool: raise --senders"
        )
    if args.validators < 2:
        raise SystemExit("--validators must be at least 2")
    progress = progress_printer(args.json)
    one = measure(1, args, progress)
    many = measure(args.validators, args, progress)
    ratio = many["tps"] / one["tps"]
    result = {
        "transfers": args.transfers,
        "senders": args.senders,
        "batch": args.batch,
        "one": one,
        "many": many,
        "ratio": ratio,
        "goal": GOAL,
        "goal_met": ratio >= GOAL,
    }
    print(json.dumps(result) if args.json else "\n" + report_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
