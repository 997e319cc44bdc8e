"""What confidentiality costs: confidential Vault writes and reads against public ones.

    python -m bench.confidential [--writes N] [--senders K] [--rounds R] [--reads M]
                                 [--log-queries L] [--enclave process|in-process]
                                 [--json] [--profile FILE] [--node-arg ARG ...]

One run, one real `conclave dev` process (in a data directory of the benchmark's own; the
enclave in its own process by default), does this:

1. Set-up (untimed): dev account 0 and the K senders (dev accounts 1..K; the node is
   started with enough accounts) sign in (EIP-4361, `tests.support.sign_in`). Account 0
   deploys the Vault test contract twice: publicly (`eth_sendRawTransaction`) and
   confidentially (`conclave_sendRawPrivateTransaction`, signed in as account 0, with
   `privateFor` = the K senders, so every sender is a party). Each sender writes once to
   each vault (a warm-up: the first write fills the vault's slots from zero, at twice
   the gas). Then N `write(note, tag)` transactions are pre-signed for each vault,
   spread evenly over the senders: explicit nonces in the order they will be sent, gas
   80,000 (a write uses about 41,000), a fresh 64-byte note and tag each, so every
   write changes the same storage slots and logs one `NoteWritten` of the same size.
   The writes to the confidential vault are ordinary `eth_sendRawTransaction`s: they
   are confidential because the vault is.
2. Writes (timed): R rounds, each a public and a confidential batch of N/R writes, in
   the order P C, C P, P C, ... so that drift (a growing ledger, other load) falls on
   both kinds alike. A batch is sent as `bench.erc20_throughput` sends: one client
   thread per sender posts its transactions in nonce order over its own keep-alive
   connection; the main thread polls eth_blockNumber and, whenever the head moves, the
   senders' nonces, until the whole batch is mined. The time runs from the first send
   until then. Per kind: transactions per second over its batches, the CPU time of the
   node and its enclave process per write, blocks, gas used, and the ratio confidential
   / public. Then every block's receipts are checked through eth_getBlockReceipts,
   signed in as sender 1 (a party): each block holds only its batch's writes, all of
   status 1.
3. Reads (timed; one request at a time on one kept-alive connection, the kinds
   interleaved request by request, after one untimed pass):
   - eth_getTransactionReceipt of M public and M confidential writes;
   - eth_getLogs by vault address, L times, over the blocks of one batch of the vault's
     own kind (N/R logs; no transaction of the other kind in range), and over all the
     blocks of the timed writes (N logs; both kinds in range).
   Public data is read anonymously and signed in as sender 1; confidential data signed
   in as sender 1, and, for eth_getLogs over all the blocks, anonymously too (an
   outsider: it gets no log, but the range holds sealed transactions). Per-call latency
   percentiles, and each median over the public anonymous one.
4. Prints the figures, the bytes a write of each kind takes in the ledger's tables (from
   the stopped node's SQLite file: a public write's raw transaction, receipt and log
   row; a confidential write's one sealed row), and the peak resident memory (VmHWM) of
   the node and of its enclave process after the writes and after the reads: a table,
   or one JSON object with `--json` (progress goes to stderr then).

`--profile FILE` runs the node under cProfile; with `--enclave process` execution,
sealing and opening happen in the enclave process, which is not profiled, so profile
with `--enclave in-process` to see them. The defaults (4,000 writes of each kind, 8
senders, 4 rounds, 200 receipts, 10 log queries) take about a minute on 2 cores. The
client shares the machine with the node: compare the ratios of one run, not rates across
runs.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    cpu_delta,
    mebibytes,
    node_directory,
    percentiles_ms,
    profile_lines,
    profile_summary,
    progress_printer,
    start_node,
)
from bench.erc20_throughput import (
    DEPLOY_GAS,
    MAX_PER_SENDER,
    RECEIPT_TIMEOUT,
    RpcFailure,
    Sender,
    SignedTx,
    bodies,
    hex_bytes,
    hex_int,
    sign,
)
from bench.get_logs import DEFAULT_MAX_RESULTS
from tests.support.artifacts import load_artifact
from tests.support.devnode import DevAccount, DevNode
from tests.support.sign_in import sign_in

WRITE_GAS = 80_000
WARM_UP_GAS = 200_000
"""The first write to a vault fills its storage slots from zero: it costs about 85,000."""
NOTE_BYTES = 64
WRITE_SELECTOR = keccak(b"write(string,bytes32)")[:4]
NOTE_WRITTEN = "0x" + keccak(b"NoteWritten(address,bytes32,string)").hex()
KINDS = ("public", "confidential")
JSON_HEADERS = {"content-type": "application/json"}
RECEIPT_READS = ("public", "public, signed in", "confidential, party")


# -- JSON-RPC as one caller --------------------------------------------------------------


def _body(method: str, params: list[Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _encoded(method: str, params: list[Any]) -> bytes:
    return json.dumps(_body(method, params), separators=(",", ":")).encode()


def rpc(client: httpx.Client, url: str, method: str, params: list[Any], token: str | None = None) -> Any:
    """One request, anonymous or signed in with `token`; returns the result."""
    headers = JSON_HEADERS if token is None else {**JSON_HEADERS, "Authorization": f"Bearer {token}"}
    answer = client.post(url, content=_encoded(method, params), headers=headers).raise_for_status().json()
    if "error" in answer:
        raise RpcFailure(f"{method}: {answer['error']}")
    return answer["result"]


def wait_receipt(
    client: httpx.Client, url: str, tx_hash: str, token: str | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        receipt = rpc(client, url, "eth_getTransactionReceipt", [tx_hash], token)
        if receipt is not None:
            if receipt["status"] != "0x1":
                raise RuntimeError(f"set-up transaction {tx_hash} failed: {receipt}")
            return dict(receipt)
        if time.monotonic() > deadline:
            raise RuntimeError(f"set-up transaction {tx_hash} not included after {timeout}s")
        time.sleep(0.05)


# -- transactions ------------------------------------------------------------------------


def note(kind: str, index: int) -> str:
    """A distinct note of exactly NOTE_BYTES bytes."""
    return f"{kind} note {index:07d} ".ljust(NOTE_BYTES, ".")


def write_data(kind: str, index: int) -> bytes:
    tag = keccak(f"conclave-bench-{kind}-{index}".encode())
    return WRITE_SELECTOR + abi_encode(["string", "bytes32"], [note(kind, index), tag])


@dataclass
class Batch:
    kind: str
    round: int
    per_sender: list[list[SignedTx]]  # in nonce order, one list per sender
    nonces_after: list[int]  # each sender's nonce once the batch is mined

    @property
    def size(self) -> int:
        return sum(len(own) for own in self.per_sender)


@dataclass
class Setup:
    vaults: dict[str, str]  # kind -> address
    tokens: list[str]  # of the senders; tokens[0] is sender 1's, the reader's
    senders: list[DevAccount]
    batches: list[Batch]


def schedule(writes: int, rounds: int) -> list[tuple[str, int, int]]:
    """(kind, round, size) of each batch in sending order: P C, C P, P C, ..."""
    order = []
    for r in range(rounds):
        size = writes // rounds + (1 if r < writes % rounds else 0)
        kinds = KINDS if r % 2 == 0 else KINDS[::-1]
        order += [(kind, r, size) for kind in kinds]
    return order


def set_up(node: DevNode, client: httpx.Client, args: argparse.Namespace, progress: Progress) -> Setup:
    url, chain_id = node.rpc_url, node.chain_id
    deployer = node.accounts[0]
    senders = node.accounts[1 : args.senders + 1]
    progress(f"signing in dev accounts 0..{args.senders} ...")
    deployer_token = sign_in(url, deployer.key)
    tokens = [sign_in(url, account.key) for account in senders]
    reader = tokens[0]

    progress("deploying Vault publicly and confidentially ...")
    artifact = load_artifact("Vault")
    creation = hex_bytes(artifact["bytecode"]) + abi_encode(["string"], ["opening terms"])
    public_deploy = sign(deployer.key, chain_id, 0, None, creation, DEPLOY_GAS)
    private_deploy = sign(deployer.key, chain_id, 1, None, creation, DEPLOY_GAS)
    if rpc(client, url, "eth_sendRawTransaction", ["0x" + public_deploy.raw.hex()]) != public_deploy.hash:
        raise RpcFailure("eth_sendRawTransaction answered another hash")
    private_for = {"privateFor": [account.address for account in senders]}
    sent = rpc(
        client,
        url,
        "conclave_sendRawPrivateTransaction",
        ["0x" + private_deploy.raw.hex(), private_for],
        deployer_token,
    )
    if sent != private_deploy.hash:
        raise RpcFailure("conclave_sendRawPrivateTransaction answered another hash")
    vaults = {
        "public": wait_receipt(client, url, public_deploy.hash)["contractAddress"],
        "confidential": wait_receipt(client, url, private_deploy.hash, reader)["contractAddress"],
    }
    if rpc(client, url, "eth_getTransactionReceipt", [private_deploy.hash]) is not None:
        raise RuntimeError("an anonymous reader sees the confidential deployment")
    if rpc(client, url, "eth_getCode", [vaults["confidential"], "latest"]) != "0x":
        raise RuntimeError("an anonymous reader sees the confidential vault's code")

    progress("warming up: one write from each sender to each vault ...")
    nonces = [0] * len(senders)
    warm_up = []
    for i, account in enumerate(senders):
        for kind in KINDS:
            tx = sign(
                account.key, chain_id, nonces[i], vaults[kind], write_data(f"warm-{kind}", i), WARM_UP_GAS
            )
            nonces[i] += 1
            if rpc(client, url, "eth_sendRawTransaction", ["0x" + tx.raw.hex()]) != tx.hash:
                raise RpcFailure("eth_sendRawTransaction answered another hash")
            warm_up.append(tx)
    for tx in warm_up:
        wait_receipt(client, url, tx.hash, reader)

    progress(f"signing {args.writes:,} writes to each vault ...")
    batches = []
    counters = dict.fromkeys(KINDS, 0)
    for kind, round_, size in schedule(args.writes, args.rounds):
        per_sender: list[list[SignedTx]] = [[] for _ in senders]
        for j in range(size):
            i = j % len(senders)
            data = write_data(kind, counters[kind])
            counters[kind] += 1
            per_sender[i].append(sign(senders[i].key, chain_id, nonces[i], vaults[kind], data, WRITE_GAS))
            nonces[i] += 1
        batches.append(Batch(kind, round_, per_sender, list(nonces)))
    return Setup(vaults, tokens, senders, batches)


# -- the timed writes --------------------------------------------------------------------


@dataclass
class BatchResult:
    kind: str
    round: int
    transactions: int
    seconds: float
    send_seconds: float
    first_block: int
    last_block: int
    cpu_seconds: float | None
    pool_full_retries: int

    def figures(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "round": self.round,
            "transactions": self.transactions,
            "seconds": self.seconds,
            "tps": self.transactions / self.seconds,
            "send_seconds": self.send_seconds,
            "first_block": self.first_block,
            "last_block": self.last_block,
            "cpu_seconds": self.cpu_seconds,
            "pool_full_retries": self.pool_full_retries,
        }


def _nonces(client: httpx.Client, url: str, senders: Sequence[DevAccount], block: int) -> list[int]:
    """Each sender's nonce after `block` (a number, not "latest": the head may move on
    between two requests, and the batch's blocks end at the block the nonces were read at)."""
    body = [_body("eth_getTransactionCount", [a.address, hex(block)], i) for i, a in enumerate(senders)]
    answers = sorted(client.post(url, json=body).raise_for_status().json(), key=lambda a: a["id"])
    for answer in answers:
        if "error" in answer:
            raise RpcFailure(f"eth_getTransactionCount: {answer['error']}")
    return [hex_int(a["result"]) for a in answers]


def run_batch(
    url: str, setup: Setup, batch: Batch, processes: NodeProcesses, poll_interval: float
) -> BatchResult:
    """Send one batch, a client thread per sender, and wait until all of it is mined."""
    active = [i for i, own in enumerate(batch.per_sender) if own]
    accounts = [setup.senders[i] for i in active]
    wanted = [batch.nonces_after[i] for i in active]
    gate = threading.Barrier(len(active) + 1)
    threads = [Sender(url, bodies(batch.per_sender[i], 0), gate) for i in active]
    for thread in threads:
        thread.start()
    with httpx.Client(timeout=120) as client:
        seen = hex_int(rpc(client, url, "eth_blockNumber", []))
        first_block = seen + 1
        cpu_before = processes.cpu_seconds()
        gate.wait()
        started = time.perf_counter()
        deadline = started + RECEIPT_TIMEOUT
        while True:
            time.sleep(poll_interval)
            head = hex_int(rpc(client, url, "eth_blockNumber", []))
            if head != seen:  # the nonces only change with the head
                seen = head
                if all(n >= w for n, w in zip(_nonces(client, url, accounts, head), wanted, strict=True)):
                    break
            failed = [t for t in threads if t.error is not None]
            if failed:
                raise RuntimeError(f"a sender thread failed: {failed[0].error!r}") from failed[0].error
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the {batch.kind} batch was not mined after {RECEIPT_TIMEOUT}s")
        done = time.perf_counter()
        cpu_after = processes.cpu_seconds()
    for thread in threads:
        thread.join()
        if thread.error is not None:
            raise RuntimeError(f"a sender thread failed: {thread.error!r}") from thread.error
    first = min(t.first_send for t in threads)
    return BatchResult(
        kind=batch.kind,
        round=batch.round,
        transactions=batch.size,
        seconds=done - first,
        send_seconds=max(t.finished for t in threads) - first,
        first_block=first_block,
        last_block=seen,
        cpu_seconds=cpu_delta(cpu_before, cpu_after),
        pool_full_retries=sum(t.retries for t in threads),
    )


def verify_writes(
    client: httpx.Client, url: str, setup: Setup, results: Sequence[BatchResult]
) -> dict[str, list[int]]:
    """Every block of the timed writes holds only the batch's transactions, all of status 1
    (read as sender 1, a party); returns the gas each write used, by kind."""
    gas: dict[str, list[int]] = {kind: [] for kind in KINDS}
    for batch, result in zip(setup.batches, results, strict=True):
        wanted = {tx.hash for own in batch.per_sender for tx in own}
        seen: set[str] = set()
        for number in range(result.first_block, result.last_block + 1):
            for receipt in rpc(client, url, "eth_getBlockReceipts", [hex(number)], setup.tokens[0]):
                tx_hash = receipt["transactionHash"]
                if tx_hash not in wanted:
                    raise RuntimeError(f"block {number} holds {tx_hash}, not of its {batch.kind} batch")
                if receipt["status"] != "0x1":
                    raise RuntimeError(f"{batch.kind} write {tx_hash} failed: {receipt}")
                gas[batch.kind].append(hex_int(receipt["gasUsed"]))
                seen.add(tx_hash)
        if seen != wanted:
            raise RuntimeError(f"{len(wanted - seen)} {batch.kind} writes have no receipt in their blocks")
    return gas


# -- the timed reads ---------------------------------------------------------------------


@dataclass
class Read:
    """One kind of read: a pre-encoded request, the caller's headers and a check of the answer."""

    name: str
    bodies: list[bytes]
    headers: dict[str, str]
    expected: list[Any]  # per body: the receipt's hash, or the number of logs
    latencies: list[float] = field(default_factory=list)
    response_bytes: int = 0


def _check(read: Read, index: int, result: Any) -> None:
    expected = read.expected[index]
    if isinstance(expected, str):
        if result is None or result["transactionHash"] != expected or result["status"] != "0x1":
            raise RuntimeError(f"{read.name}: eth_getTransactionReceipt({expected}) answered {result}")
    elif len(result) != expected or any(log["topics"][0] != NOTE_WRITTEN for log in result):
        raise RuntimeError(f"{read.name}: eth_getLogs answered {len(result)} logs, expected {expected}")


def time_reads(url: str, reads: Sequence[Read], calls: int) -> None:
    """Call each read `calls` times, interleaved request by request, on one connection
    (after one untimed pass); records each answer's latency."""
    perf = time.perf_counter
    with httpx.Client(timeout=300) as client:
        for timed in (False, True):
            for i in range(calls if timed else min(calls, 2)):
                for read in reads:
                    index = i % len(read.bodies)
                    sent = perf()
                    response = client.post(url, content=read.bodies[index], headers=read.headers)
                    received = perf()
                    answer = response.raise_for_status().json()
                    if "error" in answer:
                        raise RpcFailure(f"{read.name}: {answer['error']}")
                    _check(read, index, answer["result"])
                    if timed:
                        read.latencies.append(received - sent)
                        read.response_bytes = len(response.content)


def receipt_reads(setup: Setup, count: int) -> list[Read]:
    samples = {}
    for kind in KINDS:
        hashes = [tx.hash for b in setup.batches if b.kind == kind for own in b.per_sender for tx in own]
        step = max(1, len(hashes) // count)
        samples[kind] = hashes[::step][:count]
    anonymous, signed_in = _headers(None), _headers(setup.tokens[0])
    chosen = [("public", anonymous), ("public", signed_in), ("confidential", signed_in)]
    return [
        Read(
            name,
            [_encoded("eth_getTransactionReceipt", [h]) for h in samples[kind]],
            headers,
            list(samples[kind]),
        )
        for name, (kind, headers) in zip(RECEIPT_READS, chosen, strict=True)
    ]


def log_reads(setup: Setup, results: Sequence[BatchResult]) -> dict[str, list[Read]]:
    """eth_getLogs by vault address over two scopes: the blocks of one batch of the vault's
    own kind (no block of the other kind in range), and all the blocks of the timed writes."""
    anonymous, signed_in = _headers(None), _headers(setup.tokens[0])
    own = {kind: next(r for r in results if r.kind == kind) for kind in KINDS}
    everything = (results[0].first_block, results[-1].last_block)
    per_kind = sum(r.transactions for r in results if r.kind == "public")

    def read(name: str, kind: str, blocks: tuple[int, int], headers: dict[str, str], logs: int) -> Read:
        log_filter = {"fromBlock": hex(blocks[0]), "toBlock": hex(blocks[1]), "address": setup.vaults[kind]}
        return Read(name, [_encoded("eth_getLogs", [log_filter])], headers, [logs])

    def batch_blocks(kind: str) -> tuple[int, int]:
        return own[kind].first_block, own[kind].last_block

    return {
        "batch": [
            read("public", "public", batch_blocks("public"), anonymous, own["public"].transactions),
            read(
                "public, signed in", "public", batch_blocks("public"), signed_in, own["public"].transactions
            ),
            read(
                "confidential, party",
                "confidential",
                batch_blocks("confidential"),
                signed_in,
                own["confidential"].transactions,
            ),
        ],
        "all": [
            read("public", "public", everything, anonymous, per_kind),
            read("public, signed in", "public", everything, signed_in, per_kind),
            read("confidential, party", "confidential", everything, signed_in, per_kind),
            read("confidential, outsider", "confidential", everything, anonymous, 0),
        ],
    }


def _headers(token: str | None) -> dict[str, str]:
    return JSON_HEADERS if token is None else {**JSON_HEADERS, "Authorization": f"Bearer {token}"}


def read_figures(reads: Sequence[Read]) -> dict[str, dict[str, Any]]:
    base = percentiles_ms(reads[0].latencies)["p50"]
    figures = {}
    for read in reads:
        latency = percentiles_ms(read.latencies)
        figures[read.name] = {
            "calls": len(read.latencies),
            "latency_ms": latency,
            "response_bytes": read.response_bytes,
            "p50_over_public": latency["p50"] / base if base else None,
        }
    return figures


# -- what each kind stores -----------------------------------------------------------------


def stored_bytes(database: Path, vaults: dict[str, str], first: int, last: int) -> dict[str, dict[str, Any]]:
    """The bytes the timed writes take in the ledger's tables (contents, without keys and
    indexes): a public write's raw transaction, receipt and log rows; a confidential
    write's sealed row."""
    raw = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        public = hex_bytes(vaults["public"])
        count, transactions = raw.execute(
            "SELECT COUNT(*), SUM(LENGTH(raw)) FROM transactions "
            "WHERE block_number BETWEEN ? AND ? AND recipient = ?",
            (first, last, public),
        ).fetchone()
        (receipts,) = raw.execute(
            "SELECT SUM(LENGTH(r.encoded)) FROM receipts r "
            "JOIN transactions t ON t.hash = r.transaction_hash "
            "WHERE t.block_number BETWEEN ? AND ? AND t.recipient = ?",
            (first, last, public),
        ).fetchone()
        (logs,) = raw.execute(
            "SELECT SUM(LENGTH(address) + LENGTH(data) + COALESCE(LENGTH(topic0), 0) "
            "+ COALESCE(LENGTH(topic1), 0) + COALESCE(LENGTH(topic2), 0) + COALESCE(LENGTH(topic3), 0)) "
            "FROM logs WHERE block_number BETWEEN ? AND ? AND address = ?",
            (first, last, public),
        ).fetchone()
        sealed_count, sealed = raw.execute(
            "SELECT COUNT(*), SUM(LENGTH(sealed)) FROM sealed_transactions "
            "WHERE block_number BETWEEN ? AND ?",
            (first, last),
        ).fetchone()
    finally:
        raw.close()
    return {
        "public": {
            "transactions": count,
            "bytes_per_tx": (transactions + receipts + logs) / count,
            "raw_transaction": transactions / count,
            "receipt": receipts / count,
            "logs": logs / count,
        },
        "confidential": {"transactions": sealed_count, "bytes_per_tx": sealed / sealed_count},
    }


# -- the run -----------------------------------------------------------------------------


def _by_kind(results: Sequence[BatchResult], gas: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
    figures = {}
    for kind in KINDS:
        mine = [r for r in results if r.kind == kind]
        transactions = sum(r.transactions for r in mine)
        seconds = sum(r.seconds for r in mine)
        cpu = [r.cpu_seconds for r in mine]
        blocks = sum(r.last_block - r.first_block + 1 for r in mine)
        figures[kind] = {
            "transactions": transactions,
            "seconds": seconds,
            "tps": transactions / seconds,
            "send_tps": transactions / sum(r.send_seconds for r in mine),
            "cpu_ms_per_tx": (
                None if any(c is None for c in cpu) else sum(c or 0.0 for c in cpu) * 1000 / transactions
            ),
            "blocks": blocks,
            "avg_tx_per_block": transactions / blocks,
            "gas_used_per_tx": sum(gas[kind]) / len(gas[kind]),
            "pool_full_retries": sum(r.pool_full_retries for r in mine),
        }
    return figures


def run(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    memory: dict[str, dict[str, int | None]] = {}
    with node_directory() as data_dir:
        node_args = ["--enclave", args.enclave, "--accounts", str(max(10, args.senders + 1))]
        if args.writes > DEFAULT_MAX_RESULTS:  # one eth_getLogs returns every write's log
            node_args += ["--max-log-results", str(args.writes)]
        node_args += args.node_arg
        progress(f"starting conclave dev ({' '.join(node_args)}) ...")
        node = start_node(data_dir, *node_args, profile=args.profile)
        try:
            processes = NodeProcesses.of(node)
            url = node.rpc_url
            with httpx.Client(timeout=120) as client:
                setup = set_up(node, client, args, progress)
                results = []
                for batch in setup.batches:
                    progress(f"round {batch.round + 1}: {batch.size:,} {batch.kind} writes ...")
                    results.append(run_batch(url, setup, batch, processes, args.poll_interval))
                memory["after_writes"] = processes.peak_rss()
                progress("checking every receipt ...")
                gas = verify_writes(client, url, setup, results)
            first, last = results[0].first_block, results[-1].last_block
            receipts = receipt_reads(setup, args.reads)
            progress(f"reading {len(receipts[0].bodies)} receipts of each kind, {len(receipts)} ways ...")
            time_reads(url, receipts, len(receipts[0].bodies))
            logs = log_reads(setup, results)
            progress(f"eth_getLogs of each vault over one batch's blocks, {args.log_queries} times ...")
            time_reads(url, logs["batch"], args.log_queries)
            progress(f"eth_getLogs of each vault over blocks {first}..{last}, {args.log_queries} times ...")
            time_reads(url, logs["all"], args.log_queries)
            memory["after_reads"] = processes.peak_rss()
        finally:
            node.stop()
        stored = stored_bytes(data_dir / LEDGER_FILE, setup.vaults, first, last)
    if (
        stored["public"]["transactions"] != args.writes
        or stored["confidential"]["transactions"] != args.writes
    ):
        raise RuntimeError(f"the ledger holds other transactions in blocks {first}..{last} than the writes")

    writes = _by_kind(results, gas)
    public, confidential = writes["public"], writes["confidential"]
    receipt_figures = read_figures(receipts)
    log_figures = {scope: read_figures(reads) for scope, reads in logs.items()}
    result: dict[str, Any] = {
        "writes": args.writes,
        "senders": args.senders,
        "rounds": args.rounds,
        "note_bytes": NOTE_BYTES,
        "write_gas_limit": WRITE_GAS,
        "enclave": args.enclave,
        "blocks": [first, last],
        "by_kind": writes,
        "write_ratio": confidential["tps"] / public["tps"],
        "write_cpu_ratio": (
            confidential["cpu_ms_per_tx"] / public["cpu_ms_per_tx"]
            if confidential["cpu_ms_per_tx"] and public["cpu_ms_per_tx"]
            else None
        ),
        "batches": [r.figures() for r in results],
        "receipts": receipt_figures,
        "logs": {
            scope: {"logs_per_query": reads[0].expected[0], "reads": log_figures[scope]}
            for scope, reads in logs.items()
        },
        "read_ratios": {
            "receipt": _p50_ratio(receipt_figures, "public"),
            "receipt_vs_signed_in": _p50_ratio(receipt_figures, "public, signed in"),
            "logs_batch": _p50_ratio(log_figures["batch"], "public"),
            "logs_batch_vs_signed_in": _p50_ratio(log_figures["batch"], "public, signed in"),
            "logs_all": _p50_ratio(log_figures["all"], "public"),
            "logs_all_vs_signed_in": _p50_ratio(log_figures["all"], "public, signed in"),
        },
        "stored": stored,
        "node_peak_rss_bytes": {when: m["node_peak_rss_bytes"] for when, m in memory.items()},
        "enclave_peak_rss_bytes": {when: m["enclave_peak_rss_bytes"] for when, m in memory.items()},
    }
    if args.profile:
        result["profile"] = {"file": str(args.profile), **profile_summary(args.profile)}
    return result


def _p50_ratio(figures: dict[str, dict[str, Any]], reference: str) -> float:
    """The median latency of the party's confidential read over the `reference` read's."""
    return float(
        figures["confidential, party"]["latency_ms"]["p50"] / figures[reference]["latency_ms"]["p50"]
    )


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def report_table(r: dict[str, Any]) -> str:
    lines = [
        f"Confidentiality: {r['writes']:,} Vault.write of each kind ({r['note_bytes']}-byte notes), "
        f"{r['senders']} senders, {r['rounds']} rounds, enclave {r['enclave']}",
        "",
        f"  {'writes, send until mined':<30}{'tx/s':>8}{'ratio':>8}{'CPU ms/tx':>11}{'blocks':>8}"
        f"{'tx/block':>10}{'gas/tx':>9}",
    ]
    for kind in KINDS:
        k = r["by_kind"][kind]
        ratio = "" if kind == "public" else f"{r['write_ratio']:.1%}"
        cpu = "n/a" if k["cpu_ms_per_tx"] is None else f"{k['cpu_ms_per_tx']:.2f}"
        lines.append(
            f"  {kind:<30}{k['tps']:>8.1f}{ratio:>8}{cpu:>11}{k['blocks']:>8}"
            f"{k['avg_tx_per_block']:>10.1f}{k['gas_used_per_tx']:>9,.0f}"
        )
    batches = ", ".join(f"{b['kind'][0].upper()} {b['tps']:.0f}" for b in r["batches"])
    cpu_ratio = r["write_cpu_ratio"]
    lines += [
        f"  per batch, in order (tx/s): {batches}",
        f"  CPU per write (node + enclave), confidential / public: "
        f"{'n/a' if cpu_ratio is None else f'{cpu_ratio:.2f}x'}",
        "",
        f"  {'reads, one at a time':<40}{'calls':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'x public':>10}",
    ]
    logs = r["logs"]
    sections = [
        ("eth_getTransactionReceipt", r["receipts"]),
        (
            f"eth_getLogs, one batch's blocks ({logs['batch']['logs_per_query']:,} logs)",
            logs["batch"]["reads"],
        ),
        (f"eth_getLogs, all the blocks ({logs['all']['logs_per_query']:,} logs)", logs["all"]["reads"]),
    ]
    for label, reads in sections:
        lines.append(f"  {label}")
        for name, f in reads.items():
            lat = f["latency_ms"]
            lines.append(
                f"    {name:<38}{f['calls']:>6}{_ms(lat['p50']):>9}{_ms(lat['p90']):>9}"
                f"{_ms(lat['p99']):>9}{f['p50_over_public']:>9.2f}x"
            )
    stored = r["stored"]
    public = stored["public"]
    lines += [
        "  x public: median over the public anonymous read's; signed in: as sender 1, a party;",
        "  outsider: anonymous, gets no log. One batch's blocks hold only the vault's own kind;",
        "  all the blocks hold both kinds.",
        "",
        f"  stored per write: public {public['bytes_per_tx']:,.0f} B "
        f"(raw tx {public['raw_transaction']:,.0f}, receipt {public['receipt']:,.0f}, "
        f"log row {public['logs']:,.0f}), "
        f"confidential {stored['confidential']['bytes_per_tx']:,.0f} B (one sealed row)",
    ]
    node_rss, enclave_rss = r["node_peak_rss_bytes"], r["enclave_peak_rss_bytes"]
    lines.append(
        f"  peak resident memory after the writes / the reads: node {mebibytes(node_rss['after_writes'])} / "
        f"{mebibytes(node_rss['after_reads'])}, enclave process {mebibytes(enclave_rss['after_writes'])} / "
        f"{mebibytes(enclave_rss['after_reads'])}"
    )
    if "profile" in r:
        lines += profile_lines(Path(r["profile"]["file"]), r["profile"])
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.confidential",
        description="What confidentiality costs: Vault writes and reads of a confidential contract "
        "against a public one, on one dev node.",
    )
    parser.add_argument(
        "--writes", "-n", type=int, default=4000, help="writes of each kind (default: %(default)s)"
    )
    parser.add_argument(
        "--senders",
        "-k",
        type=int,
        default=8,
        help="sending accounts, one client thread each; all are parties (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="batches of each kind, alternated (default: %(default)s)"
    )
    parser.add_argument(
        "--reads", type=int, default=200, help="receipts read of each kind (default: %(default)s)"
    )
    parser.add_argument(
        "--log-queries", type=int, default=10, help="eth_getLogs of each kind (default: %(default)s)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.02,
        metavar="SECONDS",
        help="how often the head is polled (default: %(default)s)",
    )
    add_node_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.writes, args.senders, args.rounds, args.reads, args.log_queries) < 1:
        raise SystemExit("--writes, --senders, --rounds, --reads and --log-queries must be positive")
    if args.writes < args.rounds:
        raise SystemExit("--writes must be at least --rounds")
    if args.senders > 64:
        raise SystemExit("--senders: privateFor names at most 64 parties")
    if -(-args.writes // (args.rounds * args.senders)) > MAX_PER_SENDER:
        raise SystemExit(f"at most {MAX_PER_SENDER} writes per sender can wait in the pool: raise --senders")
    result = run(args, progress_printer(args.json))
    print(json.dumps(result) if args.json else "\n" + report_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
