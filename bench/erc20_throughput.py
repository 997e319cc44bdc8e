"""ERC-20 transfer throughput: a real dev node over JSON-RPC against raw py-evm.

    python -m bench.erc20_throughput [--transfers N] [--senders K] [--batch [SIZE]] [--json]
                                     [--profile FILE [--profiler auto|py-spy|cprofile]]
                                     [--node-arg ARG ...]

One run does this:

1. Set-up (untimed): starts `conclave dev --ephemeral` as a real process, deploys
   ConclaveToken from dev account 0 and gives each of the K senders (dev accounts 1..K;
   the node is started with enough accounts) a token balance. Pre-signs N EIP-1559
   `transfer` transactions spread evenly over the senders (explicit nonces, gas 60,000,
   max fee 10 gwei, 256 recipients round-robin) and pre-encodes the JSON-RPC bodies.
2. End-to-end (timed): one client thread per sender posts its transactions in nonce order
   over its own keep-alive httpx connection: single requests, or JSON-RPC batches with
   `--batch`. The main thread polls eth_blockNumber and eth_getBlockTransactionCountByNumber
   until the blocks after the set-up hold N transactions. The time runs from the first
   eth_sendRawTransaction until then (to within one poll interval). Afterwards every
   block is fetched, every receipt is checked for status 1 (eth_getBlockReceipts, plus
   a few eth_getTransactionReceipt spot checks), and the node's peak resident memory
   (VmHWM) and CPU time are read from /proc.
3. Reference (timed, after the node has stopped): the same genesis, set-up and transfers
   replayed on py-evm directly: PragueVM state over an in-memory AtomicDB. Timed: decoding
   each raw transaction with sender recovery, and `lock_changes` + `apply_transaction`,
   (a) in the node's own blocks, with each block's state root (`state.persist()`) timed
   separately and checked against the node's stateRoot, so both sides provably did the
   same work; and (b) all in one block (the block gas limit is not enforced there).
4. Prints both rates and their ratios, the blocks, CPU and memory: a table, or one JSON
   object with `--json` (progress goes to stderr then).

`--profile FILE` profiles the node during the run: with py-spy (attached to the node's
pid for the timed phase; FILE gets collapsed stacks, which speedscope.app, inferno or
flamegraph.pl read) the samples are summarised by category; with cProfile (`python -m
cProfile -o FILE -m gateway.cli dev ...`, the node's whole life) by entry point and
package. Figures measured under a profiler are slower than without.

The defaults (2,000 transfers, 8 senders) take about a minute on a 2-core machine. Note
that the client shares the machine with the node: on 2 cores, other load skews the
figures, so compare ratios from the same run rather than rates across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import rlp
from eth.abc import BlockHeaderAPI
from eth.db.atomic import AtomicDB
from eth.vm.chain_context import ChainContext
from eth.vm.forks.london.constants import INITIAL_BASE_FEE
from eth.vm.forks.prague import PragueVM
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak

from tests.support.artifacts import load_artifact
from tests.support.devnode import REPO_ROOT, DevNode, start_dev_node

GWEI = 10**9
WEI_PER_ETH = 10**18
DEV_BALANCE_ETH = 10_000
"""What each dev account holds at genesis (`conclave dev --balance` default)."""

TRANSFER_GAS = 60_000
DEPLOY_GAS = 3_000_000
SETUP_GAS = 100_000
MAX_FEE = 10 * GWEI
PRIORITY_FEE = 1 * GWEI
INITIAL_SUPPLY = 10**9 * 10**18
AMOUNT = 10**15
RECIPIENTS = 256
MAX_PER_SENDER = 1_000
"""The pool keeps at most this many transactions of one sender (ledger.mempool)."""

TRANSFER_SELECTOR = keccak(b"transfer(address,uint256)")[:4]
RECEIPT_TIMEOUT = 600.0


# -- small JSON-RPC helpers ------------------------------------------------------------


class RpcFailure(RuntimeError):
    pass


def _body(method: str, params: list[Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def call(client: httpx.Client, url: str, method: str, params: list[Any] | None = None) -> Any:
    response = client.post(url, json=_body(method, params or []))
    response.raise_for_status()
    answer = response.json()
    if "error" in answer:
        raise RpcFailure(f"{method}: {answer['error']}")
    return answer["result"]


def hex_int(value: str) -> int:
    return int(value, 16)


def hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value[2:])


# -- transactions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw: bytes
    hash: str  # 0x-hex, as the node answers it


def sign(
    key: str, chain_id: int, nonce: int, to: str | None, data: bytes, gas: int, value: int = 0
) -> SignedTx:
    fields: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "value": value,
        "data": data,
        "gas": gas,
        "maxFeePerGas": MAX_FEE,
        "maxPriorityFeePerGas": PRIORITY_FEE,
    }
    if to is not None:
        fields["to"] = hex_bytes(to)
    signed = Account.sign_transaction(fields, key)
    return SignedTx(raw=bytes(signed.raw_transaction), hash="0x" + bytes(signed.hash).hex())


def transfer_data(recipient: bytes, amount: int) -> bytes:
    return TRANSFER_SELECTOR + abi_encode(["address", "uint256"], [recipient, amount])


def recipients() -> list[bytes]:
    return [keccak(f"conclave-bench-recipient-{i}".encode())[12:] for i in range(RECIPIENTS)]


def token_address(deployer: str, nonce: int = 0) -> str:
    return "0x" + keccak(rlp.encode([hex_bytes(deployer), nonce]))[12:].hex()


# -- the node ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a live process has used (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def peak_rss_bytes(pid: int) -> int | None:
    """VmHWM of a live process (Linux), or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def wait_for_receipts(
    client: httpx.Client, url: str, hashes: Sequence[str], timeout: float = 60.0
) -> list[dict]:
    pending = list(hashes)
    found: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while pending:
        still = []
        for tx_hash in pending:
            receipt = call(client, url, "eth_getTransactionReceipt", [tx_hash])
            if receipt is None:
                still.append(tx_hash)
            else:
                found[tx_hash] = receipt
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} set-up transactions not included after {timeout}s")
            time.sleep(0.05)
    return [found[h] for h in hashes]


def send_raw(client: httpx.Client, url: str, tx: SignedTx) -> None:
    result = call(client, url, "eth_sendRawTransaction", ["0x" + tx.raw.hex()])
    if result != tx.hash:
        raise RpcFailure(f"node answered hash {result}, expected {tx.hash}")


# -- set-up ------------------------------------------------------------------------------


@dataclass
class Setup:
    token: str
    setup_head: int
    transfers: list[list[SignedTx]]  # per sender, in nonce order
    all_transfers: dict[str, SignedTx]
    setup_txs: dict[str, SignedTx]


def set_up(node: DevNode, client: httpx.Client, transfers: int, senders: int) -> Setup:
    url, chain_id = node.rpc_url, node.chain_id
    deployer = node.accounts[0]
    artifact = load_artifact("ConclaveToken")
    constructor = abi_encode(["string", "string", "uint256"], ["Bench Token", "BENCH", INITIAL_SUPPLY])
    deploy = sign(deployer.key, chain_id, 0, None, hex_bytes(artifact["bytecode"]) + constructor, DEPLOY_GAS)
    send_raw(client, url, deploy)
    (receipt,) = wait_for_receipts(client, url, [deploy.hash])
    if receipt["status"] != "0x1" or not receipt["contractAddress"]:
        raise RuntimeError(f"ConclaveToken deployment failed: {receipt}")
    token = receipt["contractAddress"]
    assert token.lower() == token_address(deployer.address).lower()

    sender_accounts = node.accounts[1 : senders + 1]
    per_sender = [transfers // senders + (1 if i < transfers % senders else 0) for i in range(senders)]
    funding = []
    for i, (account, count) in enumerate(zip(sender_accounts, per_sender, strict=True)):
        amount = AMOUNT * (count + 1)
        tx = sign(
            deployer.key, chain_id, 1 + i, token, transfer_data(hex_bytes(account.address), amount), SETUP_GAS
        )
        send_raw(client, url, tx)
        funding.append(tx)
    for receipt in wait_for_receipts(client, url, [tx.hash for tx in funding]):
        if receipt["status"] != "0x1":
            raise RuntimeError(f"token funding failed: {receipt}")
    setup_head = hex_int(call(client, url, "eth_blockNumber"))

    # Pre-sign the transfers, round-robin over the recipients.
    targets = recipients()
    plan: list[list[SignedTx]] = []
    counter = 0
    for account, count in zip(sender_accounts, per_sender, strict=True):
        own = []
        for nonce in range(count):
            data = transfer_data(targets[counter % RECIPIENTS], AMOUNT)
            own.append(sign(account.key, chain_id, nonce, token, data, TRANSFER_GAS))
            counter += 1
        plan.append(own)
    everything = {tx.hash: tx for own in plan for tx in own}
    assert len(everything) == transfers
    setup_txs = {tx.hash: tx for tx in [deploy, *funding]}
    return Setup(token, setup_head, plan, everything, setup_txs)


# -- the end-to-end run ------------------------------------------------------------------


@dataclass
class EndToEnd:
    seconds: float
    send_seconds: float
    first_send: float
    blocks: list[tuple[int, int]]  # (number, transaction count) of the blocks after set-up
    polls: int
    retries: int
    node_cpu_seconds: float | None
    client_cpu_seconds: float


def bodies(own: Sequence[SignedTx], batch: int) -> list[tuple[bytes, list[str]]]:
    """Pre-encoded HTTP bodies and the hashes each must return."""
    encoded = []
    if batch <= 0:
        for i, tx in enumerate(own):
            body = _body("eth_sendRawTransaction", ["0x" + tx.raw.hex()], i)
            encoded.append((json.dumps(body, separators=(",", ":")).encode(), [tx.hash]))
        return encoded
    for start in range(0, len(own), batch):
        chunk = own[start : start + batch]
        body = [
            _body("eth_sendRawTransaction", ["0x" + tx.raw.hex()], start + j) for j, tx in enumerate(chunk)
        ]
        encoded.append((json.dumps(body, separators=(",", ":")).encode(), [tx.hash for tx in chunk]))
    return encoded


class Sender(threading.Thread):
    """Posts one sender's pre-encoded bodies in order over one keep-alive connection."""

    def __init__(
        self, url: str, bodies: list[tuple[bytes, list[str]]], start_gate: threading.Barrier
    ) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.bodies = bodies
        self.start_gate = start_gate
        self.first_send = 0.0
        self.finished = 0.0
        self.retries = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        headers = {"content-type": "application/json"}
        try:
            with httpx.Client(timeout=120, headers=headers) as client:
                client.post(self.url, content=json.dumps(_body("eth_chainId", [])).encode())  # connect
                self.start_gate.wait()
                self.first_send = time.perf_counter()
                for content, hashes in self.bodies:
                    while True:
                        answer = client.post(self.url, content=content).json()
                        answers = answer if isinstance(answer, list) else [answer]
                        if _pool_full(answers):
                            # The pool refused (full): resend the same body after a pause.
                            # Resending a transaction that did get in answers "already known".
                            self.retries += 1
                            time.sleep(0.01)
                            continue
                        break
                    for expected, got in zip(hashes, answers, strict=True):
                        if "error" in got and got["error"].get("code") != 1000:
                            raise RpcFailure(f"eth_sendRawTransaction {expected}: {got['error']}")
                        if "result" in got and got["result"] != expected:
                            raise RpcFailure(f"node answered hash {got['result']}, expected {expected}")
                self.finished = time.perf_counter()
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def _pool_full(answers: list[dict]) -> bool:
    return any("error" in a and "txpool is full" in a["error"].get("message", "") for a in answers)


@dataclass
class Inclusion:
    """The blocks that took the transfers (number, transaction count) and when the last did."""

    blocks: list[tuple[int, int]]
    done: float
    polls: int


def wait_for_inclusion(
    client: httpx.Client,
    url: str,
    setup: Setup,
    threads: Sequence[Sender],
    gate: threading.Barrier,
    poll_interval: float,
) -> Inclusion:
    """Open the gate to the sender threads, then read the node's new blocks until they hold
    every transfer; the threads are joined. RuntimeError if a sender fails or time runs out."""
    expected = sum(len(own) for own in setup.transfers)
    blocks: list[tuple[int, int]] = []
    seen, included, polls = setup.setup_head, 0, 0
    gate.wait()
    deadline = time.perf_counter() + RECEIPT_TIMEOUT
    while included < expected:
        time.sleep(poll_interval)
        polls += 1
        head = hex_int(call(client, url, "eth_blockNumber"))
        while seen < head:
            seen += 1
            count = hex_int(call(client, url, "eth_getBlockTransactionCountByNumber", [hex(seen)]))
            blocks.append((seen, count))
            included += count
        failed = [t for t in threads if t.error is not None]
        if failed:
            raise RuntimeError(f"a sender thread failed: {failed[0].error!r}") from failed[0].error
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {included} of {expected} transfers included after {RECEIPT_TIMEOUT}s")
    done = time.perf_counter()
    for thread in threads:
        thread.join()
        if thread.error is not None:
            raise RuntimeError(f"a sender thread failed: {thread.error!r}") from thread.error
    if included != expected:
        raise RuntimeError(f"the blocks after set-up hold {included} transactions, expected {expected}")
    return Inclusion(blocks, done, polls)


def run_end_to_end(node: DevNode, setup: Setup, batch: int, poll_interval: float) -> EndToEnd:
    url = node.rpc_url
    pid = node.process.pid
    gate = threading.Barrier(len(setup.transfers) + 1)
    threads = [Sender(url, bodies(own, batch), gate) for own in setup.transfers]
    for thread in threads:
        thread.start()
    with httpx.Client(timeout=120) as client:
        node_cpu_before, client_cpu_before = cpu_seconds(pid), own_cpu_seconds()
        inclusion = wait_for_inclusion(client, url, setup, threads, gate, poll_interval)
        node_cpu_after, client_cpu_after = cpu_seconds(pid), own_cpu_seconds()
    first = min(t.first_send for t in threads)
    return EndToEnd(
        seconds=inclusion.done - first,
        send_seconds=max(t.finished for t in threads) - first,
        first_send=first,
        blocks=inclusion.blocks,
        polls=inclusion.polls,
        retries=sum(t.retries for t in threads),
        node_cpu_seconds=(
            node_cpu_after - node_cpu_before
            if node_cpu_before is not None and node_cpu_after is not None
            else None
        ),
        client_cpu_seconds=client_cpu_after - client_cpu_before,
    )


# -- reading the chain back --------------------------------------------------------------


@dataclass(frozen=True)
class NodeBlock:
    number: int
    hash: bytes
    coinbase: bytes
    timestamp: int
    gas_limit: int
    gas_used: int
    extra_data: bytes
    mix_hash: bytes
    base_fee: int
    state_root: bytes
    transaction_root: bytes
    receipt_root: bytes
    bloom: int
    transactions: tuple[str, ...]


def fetch_blocks(client: httpx.Client, url: str, last: int) -> list[NodeBlock]:
    blocks = []
    for number in range(last + 1):
        view = call(client, url, "eth_getBlockByNumber", [hex(number), False])
        blocks.append(
            NodeBlock(
                number=number,
                hash=hex_bytes(view["hash"]),
                coinbase=hex_bytes(view["miner"]),
                timestamp=hex_int(view["timestamp"]),
                gas_limit=hex_int(view["gasLimit"]),
                gas_used=hex_int(view["gasUsed"]),
                extra_data=hex_bytes(view["extraData"]),
                mix_hash=hex_bytes(view["mixHash"]),
                base_fee=hex_int(view["baseFeePerGas"]),
                state_root=hex_bytes(view["stateRoot"]),
                transaction_root=hex_bytes(view["transactionsRoot"]),
                receipt_root=hex_bytes(view["receiptsRoot"]),
                bloom=int.from_bytes(hex_bytes(view["logsBloom"]), "big"),
                transactions=tuple(view["transactions"]),
            )
        )
    return blocks


def verify(client: httpx.Client, url: str, setup: Setup, blocks: Sequence[NodeBlock]) -> None:
    """Every transfer is in a block after set-up with a receipt of status 1."""
    wanted = set(setup.all_transfers)
    seen: set[str] = set()
    for block in blocks:
        if block.number <= setup.setup_head:
            continue
        receipts = call(client, url, "eth_getBlockReceipts", [hex(block.number)])
        if [r["transactionHash"] for r in receipts] != list(block.transactions):
            raise RuntimeError(f"block {block.number}: receipts do not match its transactions")
        for receipt in receipts:
            tx_hash = receipt["transactionHash"]
            if tx_hash not in wanted:
                raise RuntimeError(
                    f"block {block.number} holds a transaction the benchmark did not send: {tx_hash}"
                )
            if receipt["status"] != "0x1":
                raise RuntimeError(f"transfer {tx_hash} failed: {receipt}")
            seen.add(tx_hash)
    if seen != wanted:
        raise RuntimeError(f"{len(wanted - seen)} transfers have no receipt")
    # Spot checks through the single-receipt method.
    ordered = sorted(wanted)
    for tx_hash in ordered[:: max(1, len(ordered) // 16)]:
        receipt = call(client, url, "eth_getTransactionReceipt", [tx_hash])
        if receipt is None or receipt["status"] != "0x1":
            raise RuntimeError(f"eth_getTransactionReceipt({tx_hash}) = {receipt}")


# -- the py-evm reference ------------------------------------------------------------------


@dataclass
class RawResult:
    decode_seconds: float = 0.0
    apply_seconds: float = 0.0
    state_root_seconds: float = 0.0
    cpu_seconds: float = 0.0  # thread CPU time of decode + apply: what load on the machine cannot inflate
    transactions: int = 0
    blocks: int = 0
    genesis_matches: bool = False
    state_roots_match: bool = True
    mismatches: list[int] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.decode_seconds + self.apply_seconds

    @property
    def with_roots_seconds(self) -> float:
        return self.seconds + self.state_root_seconds


@dataclass(frozen=True)
class GenesisAccountCopy:
    """An account of the node's genesis besides the dev accounts (the governance contract,
    the node's own account), as JSON-RPC shows it at block 0."""

    address: bytes
    balance: int
    code: bytes
    slot0: int


def fetch_genesis_extras(client: httpx.Client, url: str) -> list[GenesisAccountCopy]:
    status = client.get(url.rstrip("/") + "/node/status").json()
    addresses = [status["enclave"]["validatorAddress"], "0x00000000000000000000000000000000000c0c1e"]
    return [
        GenesisAccountCopy(
            address=hex_bytes(address),
            balance=int(call(client, url, "eth_getBalance", [address, "0x0"]), 16),
            code=hex_bytes(call(client, url, "eth_getCode", [address, "0x0"])),
            slot0=int(call(client, url, "eth_getStorageAt", [address, "0x0", "0x0"]), 16),
        )
        for address in addresses
    ]


def replay_on_py_evm(
    chain_id: int,
    alloc: Sequence[bytes],
    blocks: Sequence[NodeBlock],
    raw_by_hash: dict[str, bytes],
    timed_after: int,
    one_block: bool = False,
    extras: Sequence[GenesisAccountCopy] = (),
) -> RawResult:
    """Replay the node's chain on PragueVM over an in-memory AtomicDB.

    Blocks up to `timed_after` (the set-up) are applied untimed. The rest are timed,
    in the node's blocks, or all in one block with `one_block`.
    """
    vm = PragueVM
    builder = vm.get_transaction_builder()
    context = ChainContext(chain_id)
    db = AtomicDB()
    genesis = blocks[0]
    template = vm.create_genesis_header(
        gas_limit=genesis.gas_limit,
        timestamp=genesis.timestamp,
        coinbase=genesis.coinbase,
        extra_data=genesis.extra_data,
        difficulty=0,
        base_fee_per_gas=INITIAL_BASE_FEE,
    )
    state = vm.build_state(db, template, context, ())
    for address in sorted(alloc):
        state.set_balance(address, DEV_BALANCE_ETH * WEI_PER_ETH)
        state.set_nonce(address, 0)
    for extra in extras:
        state.set_balance(extra.address, extra.balance)
        if extra.code:
            state.set_code(extra.address, extra.code)
        if extra.slot0:
            state.set_storage(extra.address, 0, extra.slot0)
    state.persist()
    parent: BlockHeaderAPI = template.copy(state_root=state.state_root)
    result = RawResult(genesis_matches=parent.hash == genesis.hash)
    ancestors: list[bytes] = [parent.hash]

    setup_blocks = [b for b in blocks[1:] if b.number <= timed_after]
    timed_blocks = [b for b in blocks[1:] if b.number > timed_after]
    if one_block and timed_blocks:
        last = timed_blocks[-1]
        merged = NodeBlock(
            **{**last.__dict__, "transactions": tuple(h for b in timed_blocks for h in b.transactions)}
        )
        timed_blocks = [merged]

    perf = time.perf_counter
    for block in [*setup_blocks, *timed_blocks]:
        timed = block.number > timed_after
        header = vm.create_header_from_parent(
            parent,
            coinbase=block.coinbase,
            timestamp=block.timestamp,
            gas_limit=block.gas_limit,
            extra_data=block.extra_data,
            mix_hash=block.mix_hash,
        )
        state = vm.build_state(db, header, context, tuple(reversed(ancestors[-256:])))
        raws = [raw_by_hash[h] for h in block.transactions]
        errors = 0
        c0 = time.thread_time()
        t0 = perf()
        decoded = []
        for raw in raws:
            tx = builder.decode(raw)
            tx.sender  # noqa: B018 - recover the sender, as admission does
            decoded.append(tx)
        t1 = perf()
        for tx in decoded:
            state.lock_changes()
            computation = state.apply_transaction(tx)
            errors += computation.is_error
        t2 = perf()
        c2 = time.thread_time()
        state.persist()
        t3 = perf()
        if errors:
            raise RuntimeError(f"py-evm: {errors} transactions of block {block.number} failed")
        if timed:
            result.decode_seconds += t1 - t0
            result.apply_seconds += t2 - t1
            result.state_root_seconds += t3 - t2
            result.cpu_seconds += c2 - c0
            result.transactions += len(raws)
            result.blocks += 1
        if not one_block and state.state_root != block.state_root:
            result.state_roots_match = False
            result.mismatches.append(block.number)
        parent = header.copy(
            state_root=state.state_root,
            gas_used=block.gas_used,
            transaction_root=block.transaction_root,
            receipt_root=block.receipt_root,
            bloom=block.bloom,
        )
        ancestors.append(parent.hash)
    return result


# -- profiling -------------------------------------------------------------------------


def find_py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


class PySpy:
    """`py-spy record` attached to the node for the timed phase (raw collapsed stacks)."""

    def __init__(self, binary: str, pid: int, output: Path, rate: int) -> None:
        self.output = output
        self.process = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--idle",
                "--full-filenames",
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # attach before the timed phase starts
        if self.process.poll() is not None:
            raise RuntimeError(
                f"py-spy could not attach: {self.process.stderr.read() if self.process.stderr else ''}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# Categories, tried in order; a sample goes to the first whose test matches its stack.
# A stack is a list of (function, file) from the outermost frame to the innermost.
Frame = tuple[str, str]


def _has(stack: Sequence[Frame], functions: Iterable[str] = (), files: Iterable[str] = ()) -> bool:
    functions, files = set(functions), tuple(files)
    return any(f in functions or (files and any(p in path for p in files)) for f, path in stack)


def _under(stack: Sequence[Frame], function: str, file_part: str) -> bool:
    return any(f == function and file_part in path for f, path in stack)


SENDER_RECOVERY = (
    "check_signature_validity",
    "validate_transaction_signature",
    "extract_transaction_sender",
    "get_sender",
    "recover_public_key_from_msg",
    "recover_public_key_from_msg_hash",
    "ecdsa_raw_recover",
    "verify_msg",
    "verify_msg_hash",
    "ecdsa_verify",
    "recover_sender",
    "signing_hash",
)
ROOT_HASHING = ("make_trie_root_and_nodes", "ordered_trie_root", "make_state_root", "make_storage_root")
JSON_FUNCS = ("loads", "dumps", "decode", "encode", "raw_decode", "iterencode")

CATEGORIES: list[tuple[str, Callable[[Sequence[Frame]], bool]]] = [
    # With uvloop the loop's waiting (and its own C work) shows as the innermost frame Runner.run.
    (
        "event loop: idle or in uvloop's C code",
        lambda s: (
            bool(s)
            and (
                s[-1][0] == "run"
                and "asyncio/runners.py" in s[-1][1]
                or s[-1][0] in ("select", "poll")
                and "selectors.py" in s[-1][1]
            )
        ),
    ),
    ("SQL writes (LedgerStore.append_block)", lambda s: _under(s, "append_block", "ledger/store.py")),
    (
        "sender recovery / signature checks",
        lambda s: _has(s, SENDER_RECOVERY, ("/coincurve/", "/eth_keys/", "evm_runtime/signatures.py")),
    ),
    (
        "trie hashing: state root (state.persist) and tx/receipt roots",
        lambda s: (
            _has(s, ROOT_HASHING)
            or _under(s, "persist", "eth/vm/state.py")
            or _under(s, "persist", "eth/db/account.py")
        ),
    ),
    (
        "SQL reads (LedgerStore queries, state node misses)",
        lambda s: _has(s, files=("ledger/store.py",)) or _has(s, files=("/sqlalchemy/",)),
    ),
    ("py-evm execution (state.apply_transaction)", lambda s: _has(s, ("apply_transaction",))),
    (
        "block assembly (receipts, bloom, records, header)",
        lambda s: _under(s, "build_block", "block_builder.py"),
    ),
    (
        "tx decoding & stateless checks (RLP, re-encode, hash)",
        lambda s: _under(s, "decode_signed_transaction", "evm_runtime/transactions.py"),
    ),
    (
        "admission: state reads, base fee, mempool.add",
        lambda s: _under(s, "send_raw_transaction", "gateway/node.py") or _under(s, "admit", "enclave/"),
    ),
    (
        "ordering: mempool.ready/remove/prune, commit bookkeeping",
        lambda s: _under(s, "seal", "ledger/ordering.py"),
    ),
    (
        "JSON parsing / encoding",
        lambda s: (
            any(f in JSON_FUNCS and "/json/" in p for f, p in s) or _under(s, "_dump", "gateway/jsonrpc.py")
        ),
    ),
    (
        "JSON-RPC dispatch & params (incl. polling methods)",
        lambda s: _has(
            s,
            files=(
                "gateway/jsonrpc.py",
                "gateway/methods.py",
                "gateway/params.py",
                "gateway/hexcodec.py",
                "gateway/views.py",
            ),
        ),
    ),
    (
        "HTTP / ASGI (uvicorn, h11/httptools, starlette, fastapi, asyncio)",
        lambda s: _has(
            s,
            files=(
                "/uvicorn/",
                "/h11/",
                "/httptools/",
                "/starlette/",
                "/fastapi/",
                "/anyio/",
                "/asyncio/",
                "/pydantic",
            ),
        ),
    ),
]
OTHER = "other"


def _parse_frame(text: str) -> Frame:
    # py-spy raw frames look like "Class.method (path/to/file.py:123)"; keep "method".
    if text.endswith(")") and " (" in text:
        function, _, where = text[:-1].rpartition(" (")
        return function.rpartition(".")[2], where.rpartition(":")[0] or where
    return text, ""


def summarise_py_spy(path: Path) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        stack = [_parse_frame(part) for part in stack_text.split(";")]
        total += count
        for name, test in CATEGORIES:
            if test(stack):
                counts[name] += count
                break
        else:
            counts[OTHER] += count
        leaf_text = stack_text.rpartition(";")[2]
        leaf_name, _, leaf_where = leaf_text.rpartition(" (")
        functions[f"{leaf_name or leaf_text} ({_short(leaf_where.rpartition(':')[0])})"] += count
        for key in {key for key in INCLUSIVE if _under(stack, key[1], key[0])}:
            inclusive[key] += count
    idle = counts[CATEGORIES[0][0]]
    busy = total - idle
    return {
        "profiler": "py-spy",
        "samples": total,
        "busy_fraction": busy / total if total else 0.0,
        "categories": [
            {"category": name, "samples": n, "share_of_busy": (n / busy if busy else 0.0)}
            for name, n in counts.most_common()
            if name != CATEGORIES[0][0]
        ],
        "inclusive": [
            {"function": f"{file}:{name}", "share_of_busy": inclusive[(file, name)] / busy if busy else 0.0}
            for file, name in INCLUSIVE
            if inclusive[(file, name)]
        ],
        "top_leaf_functions": [
            {"function": name, "share_of_samples": n / total} for name, n in functions.most_common(15)
        ],
    }


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    try:
        return str(Path(path).relative_to(REPO_ROOT))
    except ValueError:
        return path


# For cProfile there are no stacks: cumulative times of entry points, and self time by package.
CPROFILE_ENTRY_POINTS = [
    ("gateway/jsonrpc.py", "handle_body_later"),
    ("gateway/node.py", "send_raw_transaction"),
    ("enclave/local.py", "admit"),
    ("evm_runtime/transactions.py", "decode_signed_transaction"),
    ("eth/_utils/transactions.py", "validate_transaction_signature"),
    ("eth/_utils/transactions.py", "extract_transaction_sender"),
    ("evm_runtime/signatures.py", "recover_sender"),
    ("ledger/mempool.py", "add"),
    ("ledger/ordering.py", "seal"),
    ("ledger/mempool.py", "ready"),
    ("evm_runtime/block_builder.py", "build_block"),
    ("eth/vm/state.py", "apply_transaction"),
    ("eth/vm/state.py", "persist"),
    ("eth/db/trie.py", "make_trie_root_and_nodes"),
    ("evm_runtime/trie_root.py", "ordered_trie_root"),
    ("ledger/store.py", "append_block"),
    ("enclave/local.py", "committed"),
    ("ledger/store.py", "get_node"),
    ("enclave/sealed_state.py", "seal_writes"),
    ("enclave/sealed_state.py", "get_node"),
    ("json/__init__.py", "loads"),
    ("json/__init__.py", "dumps"),
]
INCLUSIVE = [(file, name) for file, name in CPROFILE_ENTRY_POINTS if not file.startswith("json/")]
PACKAGE_GROUPS = [
    ("coincurve / eth_keys (ECDSA)", ("coincurve", "eth_keys", "_libsecp256k1", "signatures.py")),
    ("sqlalchemy / sqlite3", ("sqlalchemy", "sqlite3", "_sqlite3")),
    ("trie", ("/trie/",)),
    ("py-evm (eth/)", ("/eth/",)),
    ("rlp", ("/rlp/",)),
    ("keccak (pycryptodome, eth_hash)", ("Crypto", "eth_hash", "keccak")),
    ("eth_utils / eth_typing / cached_property", ("eth_utils", "eth_typing", "cached_property")),
    ("json", ("/json/", "_json")),
    ("HTTP / ASGI", ("uvicorn", "h11", "httptools", "starlette", "fastapi", "anyio", "asyncio", "pydantic")),
    ("conclave code", ("gateway/", "enclave/", "ledger/", "evm_runtime/")),
]


def summarise_cprofile(path: Path) -> dict[str, Any]:
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in stats.values())
    entries = []
    for file_part, name in CPROFILE_ENTRY_POINTS:
        cumulative = sum(
            ct
            for (file, _line, fn), (_cc, _nc, _tt, ct, _c) in stats.items()
            if fn == name and file.endswith(file_part)
        )
        calls = sum(
            nc
            for (file, _line, fn), (_cc, nc, _tt, _ct, _c) in stats.items()
            if fn == name and file.endswith(file_part)
        )
        if calls:
            entries.append(
                {"function": f"{file_part}:{name}", "calls": calls, "cumulative_seconds": cumulative}
            )
    groups: Counter[str] = Counter()
    for (file, _line, fn), (_cc, _nc, tt, _ct, _callers) in stats.items():
        where = f"{file}:{fn}"
        for name, markers in PACKAGE_GROUPS:
            if any(m in where for m in markers):
                groups[name] += tt
                break
        else:
            groups[
                "other (incl. select/idle)" if fn.startswith("<method 'select'") or "poll" in fn else "other"
            ] += tt
    return {
        "profiler": "cProfile (whole node lifetime, incl. start-up and set-up)",
        "total_seconds": total,
        "entry_points": entries,
        "self_time_by_package": [
            {"package": name, "seconds": t, "share": t / total if total else 0.0}
            for name, t in groups.most_common()
        ],
    }


# -- the report ------------------------------------------------------------------------


def _row(label: str, value: str = "", seconds: float | None = None) -> str:
    tail = f"   {seconds:8.3f} s" if seconds is not None else ""
    return f"  {label:<50} {value:>16}{tail}".rstrip()


def _rate(tps: float) -> str:
    return f"{tps:,.0f} tx/s"


def report_table(result: dict[str, Any]) -> str:
    r = result
    mode = f"JSON-RPC batches of {r['batch']}" if r["batch"] else "single requests"
    node_cpu = r["node_cpu_seconds"]
    rss = r["node_peak_rss_bytes"]
    lines = [
        f"ERC-20 transfers: {r['transfers']} from {r['senders']} senders, {mode}"
        + (" (node under profiler)" if r.get("profile") else ""),
        "",
        _row("end-to-end: first send -> all included", _rate(r["e2e_tps"]), r["e2e_seconds"]),
        _row("  until every send was answered", _rate(r["send_tps"]), r["send_seconds"]),
        _row("raw py-evm, in the node's blocks:"),
        _row("  decode + sender recovery + apply", _rate(r["raw_tps"]), r["raw_seconds"]),
        _row("    decode + sender recovery", "", r["raw_decode_seconds"]),
        _row("    lock_changes + apply_transaction", "", r["raw_apply_seconds"]),
        _row(
            "  the same + state root of each block",
            _rate(r["raw_with_roots_tps"]),
            r["raw_with_roots_seconds"],
        ),
        _row("raw py-evm, all in one block:"),
        _row("  decode + sender recovery + apply", _rate(r["raw_one_block_tps"]), r["raw_one_block_seconds"]),
        "",
        _row("ratio end-to-end / raw (node's blocks)", f"{r['ratio']:.1%}"),
        _row("ratio end-to-end / raw + state roots", f"{r['ratio_with_roots']:.1%}"),
        _row("ratio end-to-end / raw (one block)", f"{r['ratio_one_block']:.1%}"),
        _row(
            "ratio CPU time: raw / node (less load-dependent)",
            f"{r['ratio_cpu']:.1%}" if r["ratio_cpu"] is not None else "n/a",
        ),
        _row("blocks after set-up", str(r["blocks"])),
        _row("transactions per block: mean / max", f"{r['avg_tx_per_block']:.1f} / {r['max_tx_per_block']}"),
        _row(
            "CPU in the timed phase: node / this client",
            (f"{node_cpu:.2f} s" if node_cpu is not None else "n/a") + f" / {r['client_cpu_seconds']:.2f} s",
        ),
        _row(
            "CPU per transfer: node / raw py-evm",
            (f"{r['node_cpu_ms_per_transfer']:.2f}" if node_cpu is not None else "n/a")
            + f" / {r['raw_cpu_seconds'] * 1000 / r['transfers']:.2f} ms",
        ),
        _row("node peak resident memory (VmHWM)", f"{rss / 2**20:.1f} MiB" if rss is not None else "n/a"),
        _row(
            "py-evm replay matches: genesis / state roots",
            f"{r['genesis_matches']} / {r['state_roots_match']}",
        ),
    ]
    profile = r.get("profile")
    if profile:
        lines += ["", f"Profile of the node ({profile['profiler']}), written to {profile['file']}:"]
        if profile["profiler"] == "py-spy":
            lines.append(f"  {profile['samples']} samples, busy {profile['busy_fraction']:.0%} of them.")
            lines.append("  By category (share of busy samples):")
            lines += [f"  {e['share_of_busy']:>7.1%}  {e['category']}" for e in profile["categories"]]
            lines += ["", "  Inclusive (share of busy samples; nested, so they overlap):"]
            lines += [f"  {e['share_of_busy']:>7.1%}  {e['function']}" for e in profile["inclusive"]]
            lines += ["", "  Hottest innermost functions (share of all samples):"]
            lines += [
                f"  {e['share_of_samples']:>7.1%}  {e['function']}"
                for e in profile["top_leaf_functions"][:10]
            ]
        else:
            lines.append(
                f"  total self time {profile['total_seconds']:.2f} s. Cumulative time of entry points:"
            )
            lines += [
                f"  {e['cumulative_seconds']:>8.2f} s  {e['calls']:>7} calls  {e['function']}"
                for e in profile["entry_points"]
            ]
            lines += ["", "  Self time by package:"]
            lines += [f"  {e['share']:>7.1%}  {e['package']}" for e in profile["self_time_by_package"]]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.erc20_throughput",
        description="End-to-end ERC-20 transfer throughput of a dev node over JSON-RPC, "
        "against raw py-evm applying the same transactions in memory.",
    )
    parser.add_argument(
        "--transfers", "-n", type=int, default=2000, help="transfers to send (default: %(default)s)"
    )
    parser.add_argument(
        "--senders",
        "-k",
        type=int,
        default=8,
        help="sending accounts, one client thread each (default: %(default)s)",
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
        "--poll-interval",
        type=float,
        default=0.02,
        metavar="SECONDS",
        help="how often the head is polled (default: %(default)s)",
    )
    parser.add_argument(
        "--node-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass ARG to `conclave dev` (repeatable), e.g. --node-arg=--block-time=0.5",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="profile the node: py-spy collapsed stacks of the timed phase (open them in "
        "speedscope.app or flamegraph.pl), or a cProfile stats file",
    )
    parser.add_argument(
        "--profiler",
        choices=["auto", "py-spy", "cprofile"],
        default="auto",
        help="auto: py-spy if installed (attaching needs ptrace rights), else cProfile",
    )
    parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.transfers < 1 or args.senders < 1:
        raise SystemExit("--transfers and --senders must be positive")
    if args.senders > args.transfers:
        raise SystemExit("--senders must not exceed --transfers")
    if -(-args.transfers // args.senders) > MAX_PER_SENDER:
        raise SystemExit(
            f"at most {MAX_PER_SENDER} transfers per sender can wait in the pool: raise --senders"
        )
    log = (
        (lambda *a: print(*a, file=sys.stderr, flush=True))
        if args.json
        else (lambda *a: print(*a, flush=True))
    )

    profiler = args.profiler
    spy_binary = find_py_spy()
    if args.profile and profiler == "auto":
        profiler = "py-spy" if spy_binary else "cprofile"
    if args.profile and profiler == "py-spy" and not spy_binary:
        raise SystemExit("py-spy not found: pip install py-spy, or use --profiler cprofile")
    wrapper = (
        ["-m", "cProfile", "-o", str(args.profile.resolve())]
        if args.profile and profiler == "cprofile"
        else []
    )

    node_args = ["--ephemeral", "--accounts", str(max(10, args.senders + 1)), *args.node_arg]
    log(f"starting conclave dev ({' '.join(node_args)}){' under cProfile' if wrapper else ''} ...")
    node = start_dev_node(*node_args, interpreter_args=wrapper)
    spy: PySpy | None = None
    try:
        with httpx.Client(timeout=120) as client:
            log(
                f"deploying ConclaveToken, funding {args.senders} senders, signing {args.transfers} transfers"
            )
            setup = set_up(node, client, args.transfers, args.senders)
            if args.profile and profiler == "py-spy":
                assert spy_binary is not None
                spy = PySpy(spy_binary, node.process.pid, args.profile, args.profile_rate)
            log("sending ...")
            e2e = run_end_to_end(node, setup, args.batch, args.poll_interval)
            if spy is not None:
                spy.stop()
            rss = peak_rss_bytes(node.process.pid)
            head = setup.setup_head + len(e2e.blocks)
            blocks = fetch_blocks(client, node.rpc_url, head)
            log(f"all {args.transfers} included in {len(e2e.blocks)} blocks; verifying receipts ...")
            verify(client, node.rpc_url, setup, blocks)
            raw_by_hash = {h: tx.raw for h, tx in (setup.setup_txs | setup.all_transfers).items()}
            extras = fetch_genesis_extras(client, node.rpc_url)
    finally:
        if spy is not None:
            spy.stop()
        node.stop()

    log("replaying on py-evm in memory ...")
    alloc = [hex_bytes(a.address) for a in node.accounts]
    raw = replay_on_py_evm(node.chain_id, alloc, blocks, raw_by_hash, setup.setup_head, extras=extras)
    one = replay_on_py_evm(
        node.chain_id, alloc, blocks, raw_by_hash, setup.setup_head, one_block=True, extras=extras
    )
    for replay in (raw, one):
        if replay.transactions != args.transfers:
            raise RuntimeError(f"py-evm replayed {replay.transactions} transfers, expected {args.transfers}")

    sizes = [count for _, count in e2e.blocks]
    result: dict[str, Any] = {
        "transfers": args.transfers,
        "senders": args.senders,
        "batch": args.batch,
        "e2e_seconds": e2e.seconds,
        "e2e_tps": args.transfers / e2e.seconds,
        "send_seconds": e2e.send_seconds,
        "send_tps": args.transfers / e2e.send_seconds,
        "raw_seconds": raw.seconds,
        "raw_tps": args.transfers / raw.seconds,
        "raw_decode_seconds": raw.decode_seconds,
        "raw_apply_seconds": raw.apply_seconds,
        "raw_state_root_seconds": raw.state_root_seconds,
        "raw_with_roots_seconds": raw.with_roots_seconds,
        "raw_with_roots_tps": args.transfers / raw.with_roots_seconds,
        "raw_one_block_seconds": one.seconds,
        "raw_one_block_tps": args.transfers / one.seconds,
        "raw_one_block_with_root_tps": args.transfers / one.with_roots_seconds,
        "ratio_one_block": one.seconds / e2e.seconds,
        "ratio": raw.seconds / e2e.seconds,
        "ratio_with_roots": raw.with_roots_seconds / e2e.seconds,
        "blocks": len(sizes),
        "avg_tx_per_block": sum(sizes) / len(sizes),
        "max_tx_per_block": max(sizes),
        "block_sizes": sizes,
        "node_peak_rss_bytes": rss,
        "genesis_matches": raw.genesis_matches,
        "state_roots_match": raw.state_roots_match and raw.genesis_matches,
        "node_cpu_seconds": e2e.node_cpu_seconds,
        "node_cpu_ms_per_transfer": (
            e2e.node_cpu_seconds * 1000 / args.transfers if e2e.node_cpu_seconds is not None else None
        ),
        "raw_cpu_seconds": raw.cpu_seconds,
        "ratio_cpu": raw.cpu_seconds / e2e.node_cpu_seconds if e2e.node_cpu_seconds else None,
        "client_cpu_seconds": e2e.client_cpu_seconds,
        "polls": e2e.polls,
        "pool_full_retries": e2e.retries,
    }
    if args.profile:
        summary = summarise_py_spy(args.profile) if profiler == "py-spy" else summarise_cprofile(args.profile)
        result["profile"] = {"file": str(args.profile), **summary}
    if args.json:
        print(json.dumps(result))
    else:
        print()
        print(report_table(result))
    if not result["state_roots_match"]:
        print(
            f"warning: the py-evm replay's state roots differ from the node's (blocks {raw.mismatches[:10]})",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
