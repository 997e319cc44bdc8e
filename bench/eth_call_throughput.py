"""eth_call throughput: ERC-20 view calls over HTTP against the same calls made in-process.

    python -m bench.eth_call_throughput [--calls N] [--connections C] [--batch SIZE]
                                        [--holders K] [--enclave process|in-process]
                                        [--json] [--profile FILE] [--node-arg ARG ...]

One run does this:

1. Set-up (untimed): starts `conclave dev` as a real process in a data directory of the
   benchmark's own, deploys ConclaveToken and gives K holders a balance
   (`bench.erc20_throughput.set_up`). The call mix alternates `totalSupply()` with
   `balanceOf(holder)` over the deployer and the K holders, at "latest", with no sender
   and no gas (so the call gets the block gas limit, as a wallet's read does). Every
   request body is encoded before the clock starts. One untimed pass over the mix warms
   the node and records the answers: every later answer must equal them, the total
   supply must be the one deployed and the balances must add up to it.
2. Over HTTP (timed), three ways, N calls each:
   - one kept-alive connection, one request at a time;
   - C connections at once (one client thread each, N/C requests each);
   - JSON-RPC batches of SIZE calls on one connection.
   For each: calls per second, latency percentiles (of a request; of a whole batch for
   batches), and the CPU time the node (and its enclave process) spent per call.
3. Reference (timed, after the node has stopped): the same ledger file opened in this
   process, the same calls made N times on an `InProcessEnclave` (`enclave.call`, what the
   gateway reaches through the enclave interface, without HTTP, JSON-RPC parsing and hex
   encoding), and on one `CallContext` (py-evm alone). Their outputs must equal the
   node's answers.
4. Prints the rates, the ratios HTTP / reference (the share of the in-process rate the
   gateway keeps: 1 - ratio is what HTTP + JSON + the enclave boundary cost), latencies,
   CPU per call, and the peak resident memory of the node and of its enclave process: a
   table, or one JSON object with `--json` (progress goes to stderr then).

`--enclave` picks where the node runs its enclave (default: `process`, as `conclave dev`
does; with it, each HTTP call also crosses the process boundary). `--profile FILE` runs
the node under cProfile and prints its hottest functions; with `--enclave process` the
calls' execution happens in the enclave process, which is not profiled, so profile with
`--enclave in-process` to see it. The defaults take well under a minute on 2 cores;
compare ratios from one run, not rates across runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from bench.common import (
    NodeProcesses,
    Progress,
    add_node_arguments,
    cpu_delta,
    database_url,
    mebibytes,
    node_directory,
    percentiles_ms,
    profile_lines,
    profile_summary,
    progress_printer,
    start_node,
)
from bench.erc20_throughput import INITIAL_SUPPLY, call, hex_bytes, hex_int, set_up
from enclave.local import InProcessEnclave
from enclave.sealed_state import SealedNodes, node_ledger_secrets
from evm_runtime.calls import CallContext
from evm_runtime.chain import ChainParams, decode_header
from evm_runtime.state_db import NodeCache
from evm_runtime.transactions import CallRequest
from evm_runtime.types import ZERO_ADDRESS, Address
from gateway.jsonrpc import DEFAULT_LIMITS
from ledger.database import make_engine
from ledger.store import LedgerStore

TOTAL_SUPPLY = keccak(b"totalSupply()")[:4]
BALANCE_OF = keccak(b"balanceOf(address)")[:4]
HTTP_WAYS = ("single", "concurrent", "batched")
DEFAULT_MAX_BATCH = DEFAULT_LIMITS.max_batch
"""Batches longer than this need `conclave dev --max-batch`; the benchmark passes it."""
JSON_HEADERS = {"content-type": "application/json"}


def call_mix(deployer: str, holders: Sequence[str]) -> list[bytes]:
    """Call data: `totalSupply()` alternated with `balanceOf` of the deployer and each holder."""
    mix = []
    for holder in [deployer, *holders]:
        mix += [TOTAL_SUPPLY, BALANCE_OF + abi_encode(["address"], [holder])]
    return mix


def _request(token: str, call_data: bytes, request_id: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "eth_call",
        "params": [{"to": token, "data": "0x" + call_data.hex()}, "latest"],
    }


Body = tuple[bytes, list[str]]
"""A pre-encoded HTTP body and the results its answer must hold, in order."""


def single_bodies(token: str, mix: Sequence[bytes], expected: Sequence[str], calls: int) -> list[Body]:
    bodies = []
    for i in range(calls):
        k = i % len(mix)
        bodies.append((json.dumps(_request(token, mix[k], i), separators=(",", ":")).encode(), [expected[k]]))
    return bodies


def batch_bodies(
    token: str, mix: Sequence[bytes], expected: Sequence[str], calls: int, size: int
) -> list[Body]:
    bodies = []
    for start in range(0, calls, size):
        indices = range(start, min(calls, start + size))
        batch = [_request(token, mix[i % len(mix)], i) for i in indices]
        bodies.append(
            (json.dumps(batch, separators=(",", ":")).encode(), [expected[i % len(mix)] for i in indices])
        )
    return bodies


# -- over HTTP ---------------------------------------------------------------------------


class _Poster(threading.Thread):
    """Posts bodies in order over one kept-alive connection, timing each answer."""

    def __init__(self, url: str, bodies: Sequence[Body], gate: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.url, self.bodies, self.gate = url, bodies, gate
        self.latencies: list[float] = []
        self.started = self.finished = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=120, headers=JSON_HEADERS) as client:
                client.post(self.url, content=self.bodies[0][0])  # connect
                self.gate.wait()
                perf = time.perf_counter
                self.started = perf()
                for content, expected in self.bodies:
                    sent = perf()
                    response = client.post(self.url, content=content)
                    self.latencies.append(perf() - sent)
                    answer = response.json()
                    answers = answer if isinstance(answer, list) else [answer]
                    got = [a.get("result") for a in answers]
                    if got != expected:
                        raise RuntimeError(f"eth_call answered {answers[:2]}..., expected {expected[:2]}...")
                self.finished = perf()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.gate.abort()


@dataclass
class Measured:
    """One way of making the calls, timed."""

    calls: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float | None

    def figures(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "seconds": self.seconds,
            "calls_per_second": self.calls / self.seconds,
            "latency_ms": percentiles_ms(self.latencies),
            "cpu_us_per_call": None if self.cpu_seconds is None else self.cpu_seconds * 1e6 / self.calls,
        }


def post_all(url: str, shares: Sequence[Sequence[Body]], processes: NodeProcesses) -> Measured:
    """Post each share of bodies on a connection of its own, all at once."""
    gate = threading.Barrier(len(shares) + 1)
    posters = [_Poster(url, share, gate) for share in shares]
    for poster in posters:
        poster.start()
    cpu_before = processes.cpu_seconds()
    try:
        gate.wait()
    except threading.BrokenBarrierError:
        pass
    for poster in posters:
        poster.join()
        if poster.error is not None:
            raise RuntimeError(f"a client thread failed: {poster.error!r}") from poster.error
    cpu_after = processes.cpu_seconds()
    return Measured(
        calls=sum(len(expected) for share in shares for _, expected in share),
        seconds=max(p.finished for p in posters) - min(p.started for p in posters),
        latencies=[latency for p in posters for latency in p.latencies],
        cpu_seconds=cpu_delta(cpu_before, cpu_after),
    )


def measure_http(
    url: str,
    token: str,
    mix: Sequence[bytes],
    expected: Sequence[str],
    args: argparse.Namespace,
    processes: NodeProcesses,
) -> dict[str, Measured]:
    singles = single_bodies(token, mix, expected, args.calls)
    connections = min(args.connections, args.calls)
    return {
        "single": post_all(url, [singles], processes),
        "concurrent": post_all(url, [singles[i::connections] for i in range(connections)], processes),
        "batched": post_all(url, [batch_bodies(token, mix, expected, args.calls, args.batch)], processes),
    }


# -- the in-process reference ------------------------------------------------------------


def _timed_calls(make_call: Any, requests: Sequence[CallRequest], calls: int) -> tuple[Measured, list[str]]:
    """Warm up with one pass, then make `calls` calls; returns the timing and the warm-up answers."""
    answers = ["0x" + make_call(request).hex() for request in requests]
    latencies = []
    perf = time.perf_counter
    cpu_before = time.thread_time()
    started = perf()
    for i in range(calls):
        sent = perf()
        make_call(requests[i % len(requests)])
        latencies.append(perf() - sent)
    seconds = perf() - started
    return Measured(calls, seconds, latencies, time.thread_time() - cpu_before), answers


def measure_reference(
    data_dir: Path, chain_id: int, gas_limit: int, token: str, mix: Sequence[bytes], calls: int
) -> tuple[dict[str, Measured], dict[str, list[str]]]:
    """The same calls on the stopped node's ledger, in this process: through an
    InProcessEnclave, and on one CallContext (py-evm alone)."""
    engine = make_engine(database_url(data_dir))
    store = LedgerStore(engine)
    try:
        params = ChainParams(chain_id=chain_id, gas_limit=gas_limit)
        requests = [
            CallRequest(sender=ZERO_ADDRESS, to=Address(hex_bytes(token)), gas=gas_limit, data=call_data)
            for call_data in mix
        ]
        head = store.head()
        assert head is not None
        # The node's own enclave keys: its ledger's state is sealed with its ledger secrets.
        enclave = InProcessEnclave(store, params, keys_dir=data_dir / "enclave")
        secrets = node_ledger_secrets(data_dir / "enclave")
        by_enclave = _timed_calls(lambda r: enclave.call(r, head.number), requests, calls)
        context = CallContext(
            decode_header(head.header),
            params,
            NodeCache(SealedNodes(store, lambda: secrets)),
            store.ancestor_hashes(head.number - 1) if head.number else (),
        )
        by_context = _timed_calls(lambda r: context.call(r).output, requests, calls)
    finally:
        store.close()
        engine.dispose()
    return (
        {"enclave_call": by_enclave[0], "call_context": by_context[0]},
        {"enclave_call": by_enclave[1], "call_context": by_context[1]},
    )


# -- the run -----------------------------------------------------------------------------


def warm_up(client: httpx.Client, url: str, token: str, mix: Sequence[bytes], holder_count: int) -> list[str]:
    """One pass over the mix; checks the answers and returns them."""
    answers = [call(client, url, "eth_call", _request(token, call_data, 0)["params"]) for call_data in mix]
    supplies = {hex_int(answers[i]) for i in range(0, len(mix), 2)}
    balances = [hex_int(answers[i]) for i in range(1, len(mix), 2)]
    if supplies != {INITIAL_SUPPLY}:
        raise RuntimeError(f"totalSupply() answered {supplies}, expected {INITIAL_SUPPLY}")
    if sum(balances) != INITIAL_SUPPLY or len(balances) != holder_count + 1 or min(balances) <= 0:
        raise RuntimeError(f"balanceOf answers {balances} do not add up to the total supply")
    return answers


def run(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    with node_directory() as data_dir:
        node_args = ["--enclave", args.enclave, "--accounts", str(max(10, args.holders + 1))]
        if args.batch > DEFAULT_MAX_BATCH:
            node_args += ["--max-batch", str(args.batch)]
        node_args += args.node_arg
        progress(f"starting conclave dev ({' '.join(node_args)}) ...")
        node = start_node(data_dir, *node_args, profile=args.profile)
        try:
            processes = NodeProcesses.of(node)
            with httpx.Client(timeout=120) as client:
                progress(f"deploying ConclaveToken, funding {args.holders} holders ...")
                setup = set_up(node, client, args.holders, args.holders)
                url = node.rpc_url
                gas_limit = hex_int(call(client, url, "eth_getBlockByNumber", ["latest", False])["gasLimit"])
                mix = call_mix(
                    node.accounts[0].address, [a.address for a in node.accounts[1 : args.holders + 1]]
                )
                expected = warm_up(client, url, setup.token, mix, args.holders)
            progress(
                f"{args.calls} eth_calls each way: one connection, {args.connections} connections, "
                f"batches of {args.batch} ..."
            )
            http = measure_http(url, setup.token, mix, expected, args, processes)
            memory = processes.peak_rss()
        finally:
            node.stop()
        progress("the same calls in-process on the node's ledger ...")
        reference, answers = measure_reference(
            data_dir, node.chain_id, gas_limit, setup.token, mix, args.calls
        )
    for name, got in answers.items():
        if got != expected:
            raise RuntimeError(f"the in-process {name} answers differ from the node's")
    base = reference["enclave_call"]
    result: dict[str, Any] = {
        "calls": args.calls,
        "connections": args.connections,
        "batch_size": args.batch,
        "holders": args.holders,
        "enclave": args.enclave,
        "http": {way: measured.figures() for way, measured in http.items()},
        "reference": {name: measured.figures() for name, measured in reference.items()},
        "ratios": {
            way: (measured.calls / measured.seconds) / (base.calls / base.seconds)
            for way, measured in http.items()
        },
        "cpu_ratios": {
            way: base.cpu_seconds / measured.cpu_seconds
            if measured.cpu_seconds and base.cpu_seconds
            else None
            for way, measured in http.items()
        },
        "answers_match": True,
        **memory,
    }
    if args.profile:
        result["profile"] = {"file": str(args.profile), **profile_summary(args.profile)}
    return result


def report_table(r: dict[str, Any]) -> str:
    labels = {
        "single": "HTTP, one connection",
        "concurrent": f"HTTP, {r['connections']} connections",
        "batched": f"HTTP, batches of {r['batch_size']}",
        "enclave_call": "in-process enclave.call (reference)",
        "call_context": "in-process CallContext.call (py-evm)",
    }
    lines = [
        f"eth_call: {r['calls']} view calls each way (totalSupply / balanceOf of {r['holders'] + 1} "
        f"accounts), enclave {r['enclave']}",
        "",
        f"  {'':38}{'calls/s':>10}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/call':>13}",
    ]
    rows = [(k, r["http"][k], r["ratios"][k]) for k in HTTP_WAYS]
    rows += [(k, v, None) for k, v in r["reference"].items()]
    for key, figures, ratio in rows:
        cpu = figures["cpu_us_per_call"]
        lines.append(
            f"  {labels[key]:<38}{figures['calls_per_second']:>10,.0f}"
            f"{'' if ratio is None else f'{ratio:.1%}':>8}"
            f"{figures['latency_ms']['p50']:>9.3f}{figures['latency_ms']['p99']:>9.3f}"
            f"{'n/a' if cpu is None else f'{cpu:,.0f}':>13}"
        )
    cpu_ratio = r["cpu_ratios"]["single"]
    lines += [
        "",
        "  ratio: HTTP calls/s over the in-process enclave.call rate (batches: latency is per batch)",
        f"  CPU per call, reference / node (one connection): "
        f"{'n/a' if cpu_ratio is None else f'{cpu_ratio:.1%}'}",
        f"  peak resident memory: node {mebibytes(r['node_peak_rss_bytes'])}, "
        f"enclave process {mebibytes(r['enclave_peak_rss_bytes'])}",
    ]
    if "profile" in r:
        lines += profile_lines(Path(r["profile"]["file"]), r["profile"])
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.eth_call_throughput",
        description="ERC-20 view calls per second over HTTP (one connection, several, batches) "
        "against the same calls made in-process on the node's ledger.",
    )
    parser.add_argument("--calls", "-n", type=int, default=3000, help="calls each way (default: %(default)s)")
    parser.add_argument(
        "--connections", "-c", type=int, default=8, help="concurrent connections (default: %(default)s)"
    )
    parser.add_argument("--batch", type=int, default=100, help="JSON-RPC batch size (default: %(default)s)")
    parser.add_argument(
        "--holders", type=int, default=8, help="token holders besides the deployer (default: %(default)s)"
    )
    add_node_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.calls, args.connections, args.batch, args.holders) < 1:
        raise SystemExit("--calls, --connections, --batch and --holders must be positive")
    result = run(args, progress_printer(args.json))
    print(json.dumps(result) if args.json else "\n" + report_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
