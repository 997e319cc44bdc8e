"""eth_getLogs over a 100,000-log range: HTTP against the same queries on the ledger itself.

    python -m bench.get_logs [--logs N] [--logs-per-tx L] [--senders K] [--repeat R]
                             [--page-size P] [--enclave process|in-process]
                             [--json] [--profile FILE] [--node-arg ARG ...]

One run does this:

1. Fill (timed, reported apart): starts `conclave dev` as a real process in a data
   directory of the benchmark's own, deploys the Probe test contract and has K senders
   call `emitMany(L)`, each call logging L + 3 events: `ValueSet(who indexed = the
   sender, ...)`, `Tagged`, L x `Counted(i)` and an anonymous `Marker`. The transactions
   are signed beforehand and sent in waves, one JSON-RPC batch per wave, each wave
   logging at most P events and waiting for its receipts, so no block holds more logs
   than one page. The node is started with `--max-log-results` raised to the number of
   logs, so that one eth_getLogs may return the whole range (by default a node answers
   at most 10,000, the default P).
2. Over HTTP (timed): each query below, R times, over the whole chain. The time runs
   from sending to the last byte of each answer; parsing the JSON on the client is
   timed apart.
   - all logs in pages: one request per window of consecutive blocks holding at most P
     logs, as a client of a node with the default limit must;
   - all logs in one request; by address; by topic0 = Counted (one request each);
   - selective, one request each: topic0 = ValueSet, topic1 = one sender, and address +
     topic0 + topic1 together.
3. Reference (timed, after the node has stopped): the same queries and windows on the
   node's SQLite file in this process: `LedgerStore.logs` (what the node's handler
   reads), the same plus `log_view` and `json.dumps` (what the handler builds), and a raw
   `sqlite3` SELECT of the same rows (the same join, filter, order and limit). The rows
   must be the ones the node answered (same count, same (block, index, transaction)).
4. Prints, per query, the best of R times (and logs per second) of each tier and the
   factors between them: HTTP / store is what JSON-RPC, hex encoding and HTTP add; store
   / sqlite3 what SQLAlchemy and the StoredLog objects add. Also the node's peak resident
   memory after the fill, after the paged scan and after the one-request queries (what a
   raised `--max-log-results` costs), and the SQLite query plans (in --json).

`--profile FILE` runs the node under cProfile and prints its hottest functions (the log
queries run in the node's own process). The defaults (100,000 logs) take two to three
minutes on 2 cores; `--logs` and `--repeat` shorten or lengthen that.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from bench.common import (
    LEDGER_FILE,
    NodeProcesses,
    Progress,
    add_node_arguments,
    database_url,
    mebibytes,
    node_directory,
    profile_lines,
    profile_summary,
    progress_printer,
    start_node,
)
from bench.erc20_throughput import (
    DEPLOY_GAS,
    RpcFailure,
    SignedTx,
    call,
    hex_bytes,
    hex_int,
    send_raw,
    sign,
    wait_for_receipts,
)
from gateway.node import NodeConfig
from gateway.views import log_view
from ledger.database import make_engine
from ledger.store import LedgerStore, LogQuery
from tests.support.artifacts import load_artifact

EMIT_MANY = keccak(b"emitMany(uint256)")[:4]
COUNTED = keccak(b"Counted(uint256)")
VALUE_SET = keccak(b"ValueSet(address,uint256,string)")
FIXED_LOGS_PER_CALL = 3
"""emitMany(L) logs L + 3 events: ValueSet, Tagged, L x Counted, Marker."""
GAS_MARGIN = 1.2
FILL_TIMEOUT = 600.0
DEFAULT_MAX_RESULTS = next(f.default for f in fields(NodeConfig) if f.name == "max_log_results")
"""The most logs one eth_getLogs returns unless the node is told otherwise."""
MAX_LOG_RESULTS_CEILING = 1_000_000
"""The most `conclave dev --max-log-results` accepts."""
TIERS = ("http", "store_json", "store", "sqlite3")


# -- the fill ------------------------------------------------------------------------------


@dataclass
class Chain:
    """What the fill produced."""

    probe: bytes
    senders: list[str]
    head: int
    transactions: int
    logs_per_tx: int
    block_logs: dict[int, int]  # block number -> logs in it
    sender_txs: Counter[str]
    fill_seconds: float

    @property
    def logs(self) -> int:
        return sum(self.block_logs.values())


def _batch_body(txs: Sequence[SignedTx]) -> bytes:
    return json.dumps(
        [
            {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": ["0x" + tx.raw.hex()]}
            for i, tx in enumerate(txs)
        ]
    ).encode()


def fill(
    client: httpx.Client, url: str, chain_id: int, accounts: Sequence[Any], args: argparse.Namespace
) -> Chain:
    deployer = accounts[0]
    deploy = sign(deployer.key, chain_id, 0, None, hex_bytes(load_artifact("Probe")["bytecode"]), DEPLOY_GAS)
    send_raw(client, url, deploy)
    (receipt,) = wait_for_receipts(client, url, [deploy.hash])
    if receipt["status"] != "0x1":
        raise RuntimeError(f"Probe deployment failed: {receipt}")
    probe = receipt["contractAddress"]
    senders = accounts[1 : args.senders + 1]
    data = EMIT_MANY + abi_encode(["uint256"], [args.logs_per_tx])
    estimate = call(
        client, url, "eth_estimateGas", [{"from": senders[0].address, "to": probe, "data": "0x" + data.hex()}]
    )
    gas = math.ceil(hex_int(estimate) * GAS_MARGIN)

    per_tx = args.logs_per_tx + FIXED_LOGS_PER_CALL
    count = -(-args.logs // per_tx)
    plan = [
        sign(senders[i % len(senders)].key, chain_id, i // len(senders), probe, data, gas)
        for i in range(count)
    ]
    per_wave = args.page_size // per_tx
    waves = [plan[i : i + per_wave] for i in range(0, count, per_wave)]
    bodies = [_batch_body(wave) for wave in waves]

    block_logs: Counter[int] = Counter()
    started = time.perf_counter()
    for wave, body in zip(waves, bodies, strict=True):
        answers = client.post(url, content=body, headers={"content-type": "application/json"}).json()
        if [a.get("result") for a in answers] != [tx.hash for tx in wave]:
            raise RpcFailure(f"eth_sendRawTransaction refused: {answers[:2]}")
        for got in wait_for_receipts(client, url, [tx.hash for tx in wave], timeout=FILL_TIMEOUT):
            if got["status"] != "0x1" or len(got["logs"]) != per_tx:
                raise RuntimeError(
                    f"emitMany failed or logged {len(got['logs'])} events: {got['transactionHash']}"
                )
            block_logs[hex_int(got["blockNumber"])] += per_tx
    seconds = time.perf_counter() - started
    if max(block_logs.values()) > args.page_size:
        raise RuntimeError(f"a block holds more than {args.page_size} logs: {block_logs.most_common(1)}")
    return Chain(
        probe=hex_bytes(probe),
        senders=[s.address for s in senders],
        head=hex_int(call(client, url, "eth_blockNumber")),
        transactions=count,
        logs_per_tx=args.logs_per_tx,
        block_logs=dict(block_logs),
        sender_txs=Counter(senders[i % len(senders)].address for i in range(count)),
        fill_seconds=seconds,
    )


def windows(block_logs: dict[int, int], head: int, limit: int) -> list[tuple[int, int]]:
    """Consecutive block ranges covering 0..head, each holding at most `limit` logs."""
    found, first, held = [], 0, 0
    for number in range(head + 1):
        logs = block_logs.get(number, 0)
        if held + logs > limit:
            found.append((first, number - 1))
            first, held = number, 0
        held += logs
    found.append((first, head))
    return found


# -- the queries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    name: str
    addresses: tuple[bytes, ...]
    topics: tuple[tuple[bytes, ...] | None, ...]
    ranges: tuple[tuple[int, int], ...]
    expected: int

    def log_query(self, first: int, last: int) -> LogQuery:
        return LogQuery(first, last, self.addresses, self.topics)

    def rpc_filter(self, first: int, last: int) -> dict[str, Any]:
        criteria: dict[str, Any] = {"fromBlock": hex(first), "toBlock": hex(last)}
        if self.addresses:
            criteria["address"] = ["0x" + a.hex() for a in self.addresses]
        if self.topics:
            criteria["topics"] = [
                None if accepted is None else ["0x" + t.hex() for t in accepted] for accepted in self.topics
            ]
        return criteria


def sender_topic(address: str) -> bytes:
    return bytes(12) + hex_bytes(address)


PAGED = "all logs, in pages"


def queries(chain: Chain, page_size: int) -> list[Query]:
    whole = ((0, chain.head),)
    sender = chain.senders[0]
    topic = sender_topic(sender)
    calls = chain.transactions
    return [
        Query(PAGED, (), (), tuple(windows(chain.block_logs, chain.head, page_size)), chain.logs),
        Query("all logs", (), (), whole, chain.logs),
        Query("address", (chain.probe,), (), whole, chain.logs),
        Query("topic0 Counted", (), ((COUNTED,),), whole, calls * chain.logs_per_tx),
        Query("topic0 ValueSet", (), ((VALUE_SET,),), whole, calls),
        Query("topic1 sender", (), (None, (topic,)), whole, chain.sender_txs[sender]),
        Query(
            "address+topic0+topic1", (chain.probe,), ((VALUE_SET,), (topic,)), whole, chain.sender_txs[sender]
        ),
    ]


@dataclass
class Timing:
    """Repeated runs of one query in one tier."""

    runs: list[float] = field(default_factory=list)
    parse_runs: list[float] = field(default_factory=list)

    def figures(self, logs: int) -> dict[str, Any]:
        best = min(self.runs)
        figures = {
            "seconds": best,
            "median_seconds": statistics.median(self.runs),
            "logs_per_second": logs / best if best else None,
        }
        if self.parse_runs:
            figures["client_parse_seconds"] = min(self.parse_runs)
        return figures


@dataclass
class Outcome:
    """What one run of a query returned: its count and a digest of its rows' identities."""

    count: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    response_bytes: int = 0

    def add(self, block_number: int, log_index: int, transaction_hash: str) -> None:
        self.count += 1
        self.digest.update(f"{block_number}/{log_index}/{transaction_hash};".encode())


def http_run(client: httpx.Client, url: str, query: Query) -> tuple[float, float, Outcome]:
    outcome = Outcome()
    sending = parsing = 0.0
    perf = time.perf_counter
    for first, last in query.ranges:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [query.rpc_filter(first, last)]}
        ).encode()
        sent = perf()
        response = client.post(url, content=body, headers={"content-type": "application/json"})
        received = perf()
        answer = json.loads(response.content)
        parsing += perf() - received
        sending += received - sent
        if "error" in answer:
            raise RpcFailure(f"eth_getLogs {query.name} blocks {first}..{last}: {answer['error']}")
        outcome.response_bytes += len(response.content)
        for entry in answer["result"]:
            outcome.add(hex_int(entry["blockNumber"]), hex_int(entry["logIndex"]), entry["transactionHash"])
    return sending, parsing, outcome


# -- the reference -------------------------------------------------------------------------

RAW_COLUMNS = (
    "l.block_number, b.hash, b.timestamp, l.log_index, l.transaction_hash, l.transaction_index, "
    "l.address, l.topic0, l.topic1, l.topic2, l.topic3, l.data"
)


def raw_select(query: LogQuery, limit: int) -> tuple[str, list[Any]]:
    """The SELECT `LedgerStore.logs` makes, written out for sqlite3."""
    where = ["l.block_number >= ?", "l.block_number <= ?"]
    values: list[Any] = [query.from_block, query.to_block]
    if query.addresses:
        where.append(f"l.address IN ({', '.join('?' * len(query.addresses))})")
        values += query.addresses
    for position, accepted in enumerate(query.topics):
        if accepted:
            where.append(f"l.topic{position} IN ({', '.join('?' * len(accepted))})")
            values += accepted
    sql = (
        f"SELECT {RAW_COLUMNS} FROM logs AS l JOIN blocks AS b ON b.number = l.block_number "
        f"WHERE {' AND '.join(where)} ORDER BY l.block_number, l.log_index LIMIT ?"
    )
    return sql, [*values, limit + 1]


Fetch = Callable[[LogQuery], Sequence[Any]]
"""One tier's work for one window: the rows (or JSON views) it produces."""
Identity = Callable[[Any], tuple[int, int, str]]
"""A row's (block number, log index, transaction hash), to compare tiers' answers."""


def reference_tiers(
    store: LedgerStore, raw: sqlite3.Connection, limit: int
) -> dict[str, tuple[Fetch, Identity]]:
    def by_store_json(query: LogQuery) -> Sequence[Any]:
        views = [log_view(entry) for entry in store.logs(query, limit)]
        json.dumps(views, separators=(",", ":"))
        return views

    def by_sqlite(query: LogQuery) -> Sequence[Any]:
        return raw.execute(*raw_select(query, limit)).fetchall()

    return {
        "store_json": (
            by_store_json,
            lambda v: (hex_int(v["blockNumber"]), hex_int(v["logIndex"]), v["transactionHash"]),
        ),
        "store": (
            lambda query: store.logs(query, limit),
            lambda e: (e.block_number, e.log_index, "0x" + e.transaction_hash.hex()),
        ),
        "sqlite3": (by_sqlite, lambda row: (row[0], row[3], "0x" + row[4].hex())),
    }


def reference_run(fetch: Fetch, identity: Identity, query: Query) -> tuple[float, Outcome]:
    """Run `query` window by window; only the fetching is timed, not the comparing."""
    outcome = Outcome()
    seconds = 0.0
    perf = time.perf_counter
    for first, last in query.ranges:
        started = perf()
        found = fetch(query.log_query(first, last))
        seconds += perf() - started
        for entry in found:
            outcome.add(*identity(entry))
    return seconds, outcome


def query_plans(raw: sqlite3.Connection, found: Sequence[Query], limit: int) -> dict[str, list[str]]:
    plans = {}
    for query in found:
        sql, values = raw_select(query.log_query(*query.ranges[0]), limit)
        plans[query.name] = [row[-1] for row in raw.execute("EXPLAIN QUERY PLAN " + sql, values)]
    return plans


# -- the run ---------------------------------------------------------------------------------


def node_log_limit(args: argparse.Namespace) -> int:
    """The node's `--max-log-results`: every log the fill makes, in one answer."""
    per_tx = args.logs_per_tx + FIXED_LOGS_PER_CALL
    return max(args.page_size, -(-args.logs // per_tx) * per_tx)


def run(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    timings: dict[str, dict[str, Timing]] = {}
    outcomes: dict[str, dict[str, Outcome]] = {}
    limit = node_log_limit(args)
    memory: dict[str, int | None] = {}
    with node_directory() as data_dir:
        node_args = [
            "--enclave",
            args.enclave,
            "--accounts",
            str(max(10, args.senders + 1)),
            "--max-log-results",
            str(limit),
            *args.node_arg,
        ]
        progress(f"starting conclave dev ({' '.join(node_args)}) ...")
        node = start_node(data_dir, *node_args, profile=args.profile)
        try:
            processes = NodeProcesses.of(node)
            with httpx.Client(timeout=300) as client:
                progress(
                    f"filling the chain with {args.logs:,} logs ({args.logs_per_tx + FIXED_LOGS_PER_CALL} "
                    f"a transaction, {args.senders} senders) ..."
                )
                chain = fill(client, node.rpc_url, node.chain_id, node.accounts, args)
                memory["after_fill"] = processes.peak_rss()["node_peak_rss_bytes"]
                found = queries(chain, args.page_size)
                progress(
                    f"{chain.logs:,} logs in blocks 0..{chain.head}; eth_getLogs over HTTP, "
                    f"{len(found)} queries x {args.repeat} ..."
                )
                for query in found:
                    timing = timings.setdefault(query.name, {}).setdefault("http", Timing())
                    for _ in range(args.repeat):
                        sending, parsing, outcome = http_run(client, node.rpc_url, query)
                        timing.runs.append(sending)
                        timing.parse_runs.append(parsing)
                    outcomes.setdefault(query.name, {})["http"] = outcome
                    if query.name == PAGED:
                        memory["after_paged_scan"] = processes.peak_rss()["node_peak_rss_bytes"]
            memory["after_one_request_queries"] = processes.peak_rss()["node_peak_rss_bytes"]
            enclave_memory = processes.peak_rss()["enclave_peak_rss_bytes"]
        finally:
            node.stop()

        progress("the same queries on the node's ledger, in this process ...")
        engine = make_engine(database_url(data_dir))
        store = LedgerStore(engine)
        raw = sqlite3.connect(f"file:{data_dir / LEDGER_FILE}?mode=ro", uri=True)
        try:
            tiers = reference_tiers(store, raw, limit)
            for query in found:
                for tier, (fetch, identity) in tiers.items():
                    timing = timings[query.name].setdefault(tier, Timing())
                    for _ in range(args.repeat):
                        seconds, outcome = reference_run(fetch, identity, query)
                        timing.runs.append(seconds)
                    outcomes[query.name][tier] = outcome
            plans = query_plans(raw, found, limit)
        finally:
            raw.close()
            store.close()
            engine.dispose()

    results = {}
    for query in found:
        got = outcomes[query.name]
        for tier, outcome in got.items():
            if outcome.count != query.expected:
                raise RuntimeError(
                    f"{query.name}: {tier} returned {outcome.count} logs, expected {query.expected}"
                )
            if outcome.digest.digest() != got["http"].digest.digest():
                raise RuntimeError(f"{query.name}: {tier} returned other logs than the node")
        figures = {tier: timings[query.name][tier].figures(query.expected) for tier in TIERS}
        seconds = {tier: figures[tier]["seconds"] for tier in TIERS}
        results[query.name] = {
            "logs": query.expected,
            "requests": len(query.ranges),
            "response_bytes": got["http"].response_bytes,
            **figures,
            "factors": {
                "http_over_store": seconds["http"] / seconds["store"],
                "http_over_sqlite3": seconds["http"] / seconds["sqlite3"],
                "store_json_over_store": seconds["store_json"] / seconds["store"],
                "store_over_sqlite3": seconds["store"] / seconds["sqlite3"],
            },
            "sqlite_plan": plans[query.name],
        }
    result: dict[str, Any] = {
        "logs": chain.logs,
        "logs_per_tx": chain.logs_per_tx + FIXED_LOGS_PER_CALL,
        "transactions": chain.transactions,
        "senders": args.senders,
        "blocks": chain.head + 1,
        "page_size": args.page_size,
        "node_max_log_results": limit,
        "repeat": args.repeat,
        "enclave": args.enclave,
        "fill_seconds": chain.fill_seconds,
        "fill_logs_per_second": chain.logs / chain.fill_seconds,
        "queries": results,
        "node_peak_rss_bytes": memory,
        "enclave_peak_rss_bytes": enclave_memory,
    }
    if args.profile:
        result["profile"] = {"file": str(args.profile), **profile_summary(args.profile)}
    return result


def report_table(r: dict[str, Any]) -> str:
    memory = r["node_peak_rss_bytes"]
    lines = [
        f"eth_getLogs: {r['logs']:,} logs ({r['logs_per_tx']} a transaction, {r['transactions']} "
        f"transactions from {r['senders']} senders, {r['blocks']} blocks); best of {r['repeat']}",
        f"pages of at most {r['page_size']:,} logs; the node runs with --max-log-results "
        f"{r['node_max_log_results']:,}",
        f"fill: {r['fill_seconds']:.1f} s, {r['fill_logs_per_second']:,.0f} logs/s (execution and storage)",
        "",
        f"  {'query':<23}{'logs':>8}{'req':>5}{'HTTP s':>9}{'+parse':>8}{'store+json':>11}{'store':>8}"
        f"{'sqlite3':>9}{'HTTP logs/s':>13}{'HTTP/store':>11}{'store/sql':>10}",
    ]
    for name, q in r["queries"].items():
        f = q["factors"]
        lines.append(
            f"  {name:<23}{q['logs']:>8,}{q['requests']:>5}{q['http']['seconds']:>9.3f}"
            f"{q['http']['client_parse_seconds']:>8.3f}{q['store_json']['seconds']:>11.3f}"
            f"{q['store']['seconds']:>8.3f}{q['sqlite3']['seconds']:>9.3f}"
            f"{q['http']['logs_per_second']:>13,.0f}{f['http_over_store']:>10.1f}x{f['store_over_sqlite3']:>9.1f}x"
        )
    lines += [
        "",
        "  seconds: best of the runs; HTTP: send to last byte (+parse: the client's JSON parsing);",
        "  store+json: LedgerStore.logs + log_view + json.dumps (in-process); store: LedgerStore.logs;",
        "  sqlite3: the same rows by a raw SELECT",
        f"  node peak resident memory: {mebibytes(memory['after_fill'])} after the fill, "
        f"{mebibytes(memory['after_paged_scan'])} after the paged scan, "
        f"{mebibytes(memory['after_one_request_queries'])} after the one-request queries",
    ]
    if "profile" in r:
        lines += profile_lines(Path(r["profile"]["file"]), r["profile"])
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.get_logs",
        description="eth_getLogs over a 100,000-log range over HTTP, against the same queries "
        "on the node's ledger in-process (LedgerStore, raw sqlite3).",
    )
    parser.add_argument("--logs", "-n", type=int, default=100_000, help="logs to fill (default: %(default)s)")
    parser.add_argument(
        "--logs-per-tx",
        type=int,
        default=1_000,
        metavar="L",
        help="Counted events per transaction, each also logs 3 more (default: %(default)s)",
    )
    parser.add_argument(
        "--senders", "-k", type=int, default=4, help="sending accounts (default: %(default)s)"
    )
    parser.add_argument(
        "--repeat", "-r", type=int, default=3, help="runs of each query (default: %(default)s)"
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=DEFAULT_MAX_RESULTS,
        metavar="P",
        help="most logs in a page of the paged scan, and in a block (default: %(default)s, the node's "
        "default --max-log-results)",
    )
    add_node_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.logs, args.logs_per_tx, args.senders, args.repeat, args.page_size) < 1:
        raise SystemExit("--logs, --logs-per-tx, --senders, --repeat and --page-size must be positive")
    if node_log_limit(args) > MAX_LOG_RESULTS_CEILING:
        raise SystemExit(
            f"--logs, --page-size: a node answers at most {MAX_LOG_RESULTS_CEILING:,} logs a query"
        )
    if args.logs_per_tx + FIXED_LOGS_PER_CALL > args.page_size:
        raise SystemExit("--logs-per-tx: one transaction's logs must fit in --page-size")
    result = run(args, progress_printer(args.json))
    print(json.dumps(result) if args.json else "\n" + report_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
