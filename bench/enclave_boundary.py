"""What the enclave boundary costs: the same work with the enclave in-process and apart.

    python -m bench.enclave_boundary [--transfers N] [--senders K] [--calls N] [--json]

For each mode (`conclave dev --enclave in-process`, then `--enclave process`), in the same
run: a fresh node, the ERC-20 set-up of `bench.erc20_throughput`, then

1. transfers: N pre-signed ERC-20 transfers from K senders over HTTP until all included
   (`bench.erc20_throughput.run_end_to_end`), every receipt checked;
2. calls: `balanceOf` view calls over one keep-alive connection, one request at a time,
   then in JSON-RPC batches of 100.

Prints the rates of both modes and their ratio (process / in-process: above 1 means the
separate process wins), with the CPU time of the node and, apart, of its enclave process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from bench.erc20_throughput import cpu_seconds, fetch_blocks, run_end_to_end, set_up, verify
from tests.support.devnode import DevNode, start_dev_node

BALANCE_OF = keccak(b"balanceOf(address)")[:4]
BATCH = 100
MODES = ("in-process", "process")


@dataclass
class ModeResult:
    mode: str
    transfers_per_second: float
    calls_per_second: float
    batched_calls_per_second: float
    node_cpu_seconds: float | None
    enclave_cpu_seconds: float | None


def _enclave_pid(node: DevNode) -> int | None:
    status = httpx.get(node.rpc_url.rstrip("/") + "/node/status", timeout=10).json()
    return status["enclave"].get("pid")


def _cpu(pid: int | None) -> float | None:
    return None if pid is None else cpu_seconds(pid)


def _measure_calls(url: str, token: str, holder: str, calls: int) -> tuple[float, float]:
    data = "0x" + (BALANCE_OF + abi_encode(["address"], [holder])).hex()
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "eth_call",
        "params": [{"to": token, "data": data}, "latest"],
    }
    single = json.dumps(body).encode()
    batch = json.dumps([{**body, "id": i} for i in range(BATCH)]).encode()
    headers = {"content-type": "application/json"}
    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        for _ in range(calls):
            assert "result" in client.post(url, content=single, headers=headers).json()
        one_by_one = calls / (time.perf_counter() - started)
        rounds = max(1, calls // BATCH)
        started = time.perf_counter()
        for _ in range(rounds):
            answers = client.post(url, content=batch, headers=headers).json()
            assert len(answers) == BATCH and all("result" in a for a in answers)
        batched = rounds * BATCH / (time.perf_counter() - started)
    return one_by_one, batched


def measure(mode: str, transfers: int, senders: int, calls: int) -> ModeResult:
    node = start_dev_node("--ephemeral", "--enclave", mode, "--accounts", str(max(10, senders + 1)))
    try:
        enclave_pid = _enclave_pid(node)
        with httpx.Client(timeout=120) as client:
            setup = set_up(node, client, transfers, senders)
        enclave_before = _cpu(enclave_pid)
        run = run_end_to_end(node, setup, batch=0, poll_interval=0.02)
        enclave_after = _cpu(enclave_pid)
        with httpx.Client(timeout=120) as client:
            verify(client, node.rpc_url, setup, fetch_blocks(client, node.rpc_url, run.blocks[-1][0]))
        single, batched = _measure_calls(node.rpc_url, setup.token, node.accounts[1].address, calls)
        return ModeResult(
            mode=mode,
            transfers_per_second=transfers / run.seconds,
            calls_per_second=single,
            batched_calls_per_second=batched,
            node_cpu_seconds=run.node_cpu_seconds,
            enclave_cpu_seconds=(
                None if enclave_before is None or enclave_after is None else enclave_after - enclave_before
            ),
        )
    finally:
        node.stop()


def report(results: dict[str, ModeResult]) -> dict[str, Any]:
    inside, apart = results["in-process"], results["process"]
    return {
        "modes": {mode: asdict(result) for mode, result in results.items()},
        "ratios": {
            "transfers": apart.transfers_per_second / inside.transfers_per_second,
            "calls": apart.calls_per_second / inside.calls_per_second,
            "batched_calls": apart.batched_calls_per_second / inside.batched_calls_per_second,
        },
    }


def _table(summary: dict[str, Any]) -> str:
    lines = [f"{'':28}{'in-process':>14}{'process':>14}{'ratio':>9}"]
    modes, ratios = summary["modes"], summary["ratios"]
    for label, key, ratio in (
        ("ERC-20 transfers / s", "transfers_per_second", "transfers"),
        ("eth_call / s (one by one)", "calls_per_second", "calls"),
        ("eth_call / s (batches)", "batched_calls_per_second", "batched_calls"),
    ):
        inside, apart = modes["in-process"][key], modes["process"][key]
        lines.append(f"{label:28}{inside:>14.1f}{apart:>14.1f}{ratios[ratio]:>9.2f}")
    for label, key in (
        ("node CPU s (transfers)", "node_cpu_seconds"),
        ("enclave CPU s", "enclave_cpu_seconds"),
    ):
        values = [modes[mode][key] for mode in MODES]
        cells = "".join(f"{'-' if v is None else f'{v:.2f}':>14}" for v in values)
        lines.append(f"{label:28}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.enclave_boundary", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--transfers", type=int, default=2_000, help="ERC-20 transfers (default: %(default)s)"
    )
    parser.add_argument("--senders", type=int, default=8, help="sending accounts (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=2_000, help="eth_calls per way (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = {}
    for mode in MODES:
        print(f"measuring with the enclave {mode} ...", file=sys.stderr)
        results[mode] = measure(mode, args.transfers, args.senders, args.calls)
    summary = report(results)
    print(json.dumps(summary) if args.json else _table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
