"""What the read benchmarks share: a node whose ledger outlives it, process figures,
latency percentiles, cProfile summaries and the progress printer.

A read benchmark measures a real `conclave dev` process over HTTP, stops it, then opens
the same SQLite ledger in this process to measure the reference (the same work without
HTTP and JSON). So the node runs in a data directory that the benchmark owns
(`node_directory`), not with `--ephemeral`, which deletes it when the node exits.
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.erc20_throughput import cpu_seconds, peak_rss_bytes, summarise_cprofile
from tests.support.devnode import DevNode, start_dev_node

LEDGER_FILE = "ledger.sqlite"
"""The SQLite file `conclave dev --data-dir DIR` keeps its ledger in."""

Progress = Callable[..., None]


def progress_printer(json_output: bool) -> Progress:
    """Progress lines: to stdout for a table, to stderr when stdout carries JSON."""
    stream = sys.stderr if json_output else sys.stdout
    return lambda *parts: print(*parts, file=stream, flush=True)


@contextmanager
def node_directory() -> Iterator[Path]:
    """A data directory for one benchmark node, deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="conclave-bench-") as path:
        yield Path(path)


def database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / LEDGER_FILE}"


def start_node(data_dir: Path, *args: str, profile: Path | None = None) -> DevNode:
    """`conclave dev --data-dir DATA_DIR ARGS`, under cProfile writing `profile` if given."""
    wrapper = ["-m", "cProfile", "-o", str(profile.resolve())] if profile else []
    return start_dev_node("--data-dir", str(data_dir), *args, interpreter_args=wrapper)


# -- the node's processes --------------------------------------------------------------


@dataclass(frozen=True)
class NodeProcesses:
    """The node's OS process and, when the enclave runs apart, the enclave's."""

    node_pid: int
    enclave_pid: int | None

    @classmethod
    def of(cls, node: DevNode) -> NodeProcesses:
        status = httpx.get(node.rpc_url.rstrip("/") + "/node/status", timeout=30).json()
        pid = status["enclave"].get("pid")
        return cls(node.process.pid, int(pid) if pid is not None else None)

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the node and its enclave together (Linux), or None."""
        pids = [self.node_pid] if self.enclave_pid is None else [self.node_pid, self.enclave_pid]
        times = [cpu_seconds(pid) for pid in pids]
        return None if any(t is None for t in times) else sum(t for t in times if t is not None)

    def peak_rss(self) -> dict[str, int | None]:
        """Peak resident memory (VmHWM) of each process in bytes; None where unknown."""
        return {
            "node_peak_rss_bytes": peak_rss_bytes(self.node_pid),
            "enclave_peak_rss_bytes": None if self.enclave_pid is None else peak_rss_bytes(self.enclave_pid),
        }


def cpu_delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


# -- figures ---------------------------------------------------------------------------


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of latency samples, in milliseconds (nearest rank)."""
    ordered = sorted(seconds)
    if not ordered:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, -(-len(ordered) * q // 100) - 1))] * 1000

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1] * 1000}


def mebibytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MiB"


# -- profiling -------------------------------------------------------------------------

OUR_PACKAGES = ("gateway/", "enclave/", "ledger/", "evm_runtime/")


def profile_summary(path: Path, count: int = 20) -> dict[str, Any]:
    """Our functions with the most cumulative time in a cProfile stats file, and the
    self time of every function grouped by package (as `bench.erc20_throughput` groups it)."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    ours = []
    for (file, line, name), (_cc, calls, own, cumulative, _callers) in stats.items():
        package = next((p for p in OUR_PACKAGES if p in file), None)
        if package is None or "lifespan" in name:  # lifespan's "time" is the server's whole life
            continue
        ours.append(
            {
                "function": f"{file[file.index(package) :]}:{line}:{name}",
                "calls": calls,
                "own_seconds": own,
                "cumulative_seconds": cumulative,
            }
        )
    ours.sort(key=lambda r: r["cumulative_seconds"], reverse=True)
    return {
        "our_functions": ours[:count],
        "self_time_by_package": summarise_cprofile(path)["self_time_by_package"],
    }


def profile_lines(path: Path, summary: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"cProfile of the node's whole life (incl. start-up and set-up), written to {path}.",
        "Our functions by cumulative time (nested, so they overlap):",
    ]
    lines += [
        f"  {r['cumulative_seconds']:>8.2f} s  {r['own_seconds']:>7.2f} s own  {r['calls']:>9} calls  "
        f"{r['function']}"
        for r in summary["our_functions"]
    ]
    lines += ["", "Self time by package:"]
    lines += [f"  {e['share']:>7.1%}  {e['package']}" for e in summary["self_time_by_package"]]
    return lines


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every read benchmark takes: the node's enclave and flags, output, profile."""
    parser.add_argument(
        "--enclave",
        choices=["process", "in-process"],
        default="process",
        help="where the node runs its enclave (default: %(default)s, as conclave dev)",
    )
    parser.add_argument(
        "--node-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass ARG to `conclave dev` (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--profile", type=Path, metavar="FILE", help="run the node under cProfile, writing FILE"
    )
