#!/usr/bin/env python3
"""Purchase orders on Conclave: who sees what, step by step.

Run it against a dev node (`conclave dev`):

    python examples/purchase_orders/demo.py --rpc http://127.0.0.1:8545

or let it start a throw-away dev node of this checkout and stop it after (`make demo`):

    python examples/purchase_orders/demo.py --start-node

The cast are the dev node's accounts of the test mnemonic: the governance member (0),
the retailer (1), distributor A (2), distributor B (3), a vendor (4) and an auditor (5).
Everybody signs in with Sign-In with Ethereum and asks the node as themselves; an
anonymous client asks too.

1. The retailer deploys a PurchaseOrders contract confidential to distributor A
   (`conclave_sendRawPrivateTransaction` with `privateFor` [A]).
2. The retailer creates an order: an ordinary `eth_sendRawTransaction` to the contract,
   confidential to its parties automatically.
3. Distributor A sees the order and accepts it.
4. Distributor A assigns the vendor, whom the contract's `isParty` then names: the vendor
   sees the contract. Distributor B tries to accept the order too: nothing happens.
5. The member proposes `grant_reader(contract, auditor)` and votes for it: the auditor sees
   the contract.

After each step every viewer reads the contract and the story's transactions by every
method (eth_getCode, eth_getStorageAt, eth_call, eth_getTransactionByHash,
eth_getTransactionReceipt, eth_getLogs, eth_getBalance, eth_getBlockByNumber with full
transactions) and the script prints a table of what each one saw. It exits 1 if anybody
saw what they should not, or a party missed what it should see (so CI runs it as a
test), and 2 if the story itself could not be played (no node, a transaction failed).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "confidential"))

from conclave_client import send_private, sign_in, web3_for  # noqa: E402

ARTIFACT_PATH = HERE / "build" / "PurchaseOrders.json"
TEST_MNEMONIC = "test test test test test test test test test test test junk"
GOVERNANCE_ADDRESS = "0x00000000000000000000000000000000000C0C1E"
GOVERNANCE_ABI = [
    {
        "type": "function",
        "name": "propose",
        "stateMutability": "nonpayable",
        "inputs": [
            {
                "name": "actions",
                "type": "tuple[]",
                "components": [{"name": "kind", "type": "string"}, {"name": "args", "type": "bytes"}],
            }
        ],
        "outputs": [{"name": "id", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "vote",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "id", "type": "uint256"}, {"name": "approve", "type": "bool"}],
        "outputs": [],
    },
    {
        "type": "event",
        "name": "ProposalCreated",
        "anonymous": False,
        "inputs": [
            {"name": "id", "type": "uint256", "indexed": True},
            {"name": "proposer", "type": "address", "indexed": True},
            {"name": "closesAt", "type": "uint64", "indexed": False},
        ],
    },
    {
        "type": "event",
        "name": "ProposalResolved",
        "anonymous": False,
        "inputs": [
            {"name": "id", "type": "uint256", "indexed": True},
            {"name": "state", "type": "uint8", "indexed": False},
        ],
    },
]
ACCEPTED = 1  # a governance proposal's state
ORDER_TYPE = "(uint256,address,address,string,uint256,uint8,uint64)"
STATUS_NAMES = ("none", "created", "accepted", "vendor assigned")
EVENTS = (
    "OrderCreated(uint256,address,address,string,uint256)",
    "OrderAccepted(uint256,address)",
    "VendorAssigned(uint256,address,address)",
)
EVENT_TOPICS = ["0x" + keccak(text=signature).hex() for signature in EVENTS]
ZERO_ADDRESS = "0x" + "00" * 20


class StoryFailed(Exception):
    """A step of the story could not be played (not a confidentiality failure)."""


# -- the cast -------------------------------------------------------------------------------


@dataclass
class Viewer:
    """Someone who reads the node: signed in as `account`, or anonymous."""

    name: str
    account: LocalAccount | None
    w3: Web3

    @property
    def address(self) -> str:
        assert self.account is not None
        return self.account.address


def dev_account(mnemonic: str, index: int) -> LocalAccount:
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")


def wait_for_node(url: str, seconds: float) -> Web3:
    w3 = web3_for(url, None)
    deadline = time.monotonic() + seconds
    while True:
        try:
            w3.eth.chain_id  # noqa: B018
            return w3
        except Exception as exc:  # the node is not up yet: any connection error
            if time.monotonic() > deadline:
                raise StoryFailed(
                    f"no Conclave node answers at {url} ({exc}); start one with `conclave dev`"
                ) from None
            time.sleep(0.25)


# -- sending --------------------------------------------------------------------------------


def transact(
    sender: Viewer, call: Any, *, private_for: list[str] | None = None, gas: int | None = None
) -> Any:
    """Build `call` (a web3 contract function or constructor) as `sender`, sign it, send it
    (privately to `private_for` if given) and return its receipt, as `sender` sees it."""
    w3 = sender.w3
    params: dict[str, Any] = {
        "from": sender.address,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
    }
    if gas is not None:
        params["gas"] = gas
    signed = sender.account.sign_transaction(call.build_transaction(params))  # type: ignore[union-attr]
    if private_for is None:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    else:
        tx_hash = send_private(w3, signed, private_for)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.1)
    return receipt


# -- what a viewer sees ---------------------------------------------------------------------


@dataclass(frozen=True)
class StoryTx:
    label: str
    hash: str
    block: int
    input: str


@dataclass
class Sight:
    """What one viewer saw of the contract and the story's transactions."""

    code: int = 0
    """Bytes of code at the contract's address."""
    storage: int = 0
    """Slot 0 (orderCount)."""
    orders: tuple[Any, ...] | None = None
    """What eth_call getOrders() answered, decoded; None for no answer (0x) or an error."""
    balance: int = 0
    txs: int = 0
    """Story transactions eth_getTransactionByHash answered (not null)."""
    receipts: int = 0
    """Story transactions eth_getTransactionReceipt answered (not null)."""
    logs: int = 0
    """The contract's logs eth_getLogs answered (by address, and by topic alone)."""
    blocks: int = 0
    """Story transactions shown in full in their block (eth_getBlockByNumber, full)."""
    redacted: int = 0
    """Story transactions listed in their block without their contents."""
    errors: list[str] = field(default_factory=list)


def rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    """The raw `result` of one JSON-RPC request (None for null); raise on an error answer."""
    answer = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer.get("result")


def look(viewer: Viewer, contract: str, story: list[StoryTx]) -> Sight:
    sight = Sight()
    w3 = viewer.w3

    def attempt(what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # recorded and shown: a party that errors misses it
            sight.errors.append(f"{what}: {exc}")

    def code() -> None:
        sight.code = len(HexBytes(rpc(w3, "eth_getCode", [contract, "latest"])))

    def storage() -> None:
        sight.storage = int(rpc(w3, "eth_getStorageAt", [contract, "0x0", "latest"]), 16)

    def call() -> None:
        data = "0x" + keccak(text="getOrders()")[:4].hex()
        output = HexBytes(rpc(w3, "eth_call", [{"to": contract, "data": data}, "latest"]))
        if output:
            (sight.orders,) = abi_decode([f"{ORDER_TYPE}[]"], output)

    def balance() -> None:
        sight.balance = int(rpc(w3, "eth_getBalance", [contract, "latest"]), 16)

    def transactions() -> None:
        for tx in story:
            found = rpc(w3, "eth_getTransactionByHash", [tx.hash])
            if found is not None:
                sight.txs += 1
                if found.get("input") != tx.input:
                    sight.errors.append(f"eth_getTransactionByHash: {tx.label} answered with another input")

    def receipts() -> None:
        for tx in story:
            found = rpc(w3, "eth_getTransactionReceipt", [tx.hash])
            if found is not None:
                sight.receipts += 1
                if found.get("status") != "0x1":
                    sight.errors.append(
                        f"eth_getTransactionReceipt: {tx.label} answered status {found.get('status')}"
                    )

    def logs() -> None:
        by_address = rpc(w3, "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": contract}])
        by_topic = rpc(
            w3, "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "topics": [EVENT_TOPICS]}]
        )
        seen = {
            (log["transactionHash"], log["logIndex"])
            for log in (by_address or []) + (by_topic or [])
            if log["address"].lower() == contract.lower()
        }
        sight.logs = len(seen)

    def blocks() -> None:
        for tx in story:
            block = rpc(w3, "eth_getBlockByNumber", [hex(tx.block), True])
            for entry in block["transactions"] if block else []:
                if isinstance(entry, str):
                    sight.redacted += entry == tx.hash
                elif entry.get("hash") == tx.hash:
                    if entry.get("input") == tx.input:
                        sight.blocks += 1
                    else:
                        sight.redacted += 1

    for what, action in (
        ("eth_getCode", code),
        ("eth_getStorageAt", storage),
        ("eth_call", call),
        ("eth_getBalance", balance),
        ("eth_getTransactionByHash", transactions),
        ("eth_getTransactionReceipt", receipts),
        ("eth_getLogs", logs),
        ("eth_getBlockByNumber", blocks),
    ):
        attempt(what, action)
    return sight


# -- what each viewer should see ------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What a party sees at one point of the story (an outsider sees `Sight()`)."""

    code: int
    orders: tuple[tuple[int, str, int, int, str], ...]
    """(id, item, quantity, status, vendor) of each order."""
    txs: int
    logs: int


COLUMNS = (
    ("code", "eth_getCode"),
    ("storage", "eth_getStorageAt"),
    ("orders", "eth_call"),
    ("balance", "eth_getBalance"),
    ("txs", "eth_getTransactionByHash"),
    ("receipts", "eth_getTransactionReceipt"),
    ("logs", "eth_getLogs"),
    ("blocks", "eth_getBlockByNumber"),
)


def order_summary(orders: tuple[Any, ...]) -> tuple[tuple[int, str, int, int, str], ...]:
    return tuple((o[0], o[3], o[4], o[5], Web3.to_checksum_address(o[2])) for o in orders)


def problems(sight: Sight, party: bool, expected: Expected) -> list[str]:
    """What is wrong with `sight`: for a party, what it missed; for an outsider, what leaked."""
    if party:
        want: dict[str, Any] = {
            "code": expected.code,
            "storage": len(expected.orders),
            "orders": expected.orders,
            "balance": 0,
            "txs": expected.txs,
            "receipts": expected.txs,
            "logs": expected.logs,
            "blocks": expected.txs,
        }
        got = {name: getattr(sight, name) for name, _ in COLUMNS}
        got["orders"] = None if sight.orders is None else order_summary(sight.orders)
        missed = [method for name, method in COLUMNS if got[name] != want[name]]
        return [f"MISSING {method}" for method in missed] + [f"ERROR {error}" for error in sight.errors]
    nothing = Sight()
    leaked = [method for name, method in COLUMNS if getattr(sight, name) != getattr(nothing, name)]
    # To an outsider the node answers as for an empty account: an error is not that answer.
    return [f"LEAK {method}" for method in leaked] + [f"ERROR {error}" for error in sight.errors]


# -- the table ------------------------------------------------------------------------------


def cell(sight: Sight, name: str, total: int) -> str:
    if name == "code":
        return f"{sight.code} B" if sight.code else "0x"
    if name == "orders":
        if sight.orders is None:
            return "0x"
        return f"{len(sight.orders)} order" + ("" if len(sight.orders) == 1 else "s")
    if name in ("txs", "receipts", "blocks"):
        return f"{getattr(sight, name)}/{total}"
    return str(getattr(sight, name))


HEADINGS = (
    "viewer",
    "code",
    "storage[0]",
    "eth_call",
    "balance",
    "txs",
    "receipts",
    "logs",
    "blocks",
    "verdict",
)


def print_table(rows: list[tuple[Viewer, bool, Sight, list[str]]], total: int) -> None:
    lines = [HEADINGS]
    for viewer, party, sight, trouble in rows:
        if trouble:
            verdict = "FAIL: " + ", ".join(trouble)
        elif party:
            verdict = "sees it all (party)"
        else:
            verdict = "sees nothing"
        lines.append((viewer.name, *(cell(sight, name, total) for name, _ in COLUMNS), verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADINGS) - 1)]
    for line in lines:
        print(
            "  "
            + "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=False))
            + "  "
            + line[-1]
        )
    redacted = [f"{viewer.name} ({sight.redacted})" for viewer, _, sight, _ in rows if sight.redacted]
    if redacted:
        print(f"  blocks listing a story transaction without its contents: {', '.join(redacted)}")


# -- the story ------------------------------------------------------------------------------


@dataclass
class Demo:
    url: str
    member: Viewer
    retailer: Viewer
    distributor_a: Viewer
    distributor_b: Viewer
    vendor: Viewer
    auditor: Viewer
    anonymous: Viewer
    artifact: dict[str, Any]
    contract: Any = None
    story: list[StoryTx] = field(default_factory=list)
    parties: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    orders: list[tuple[int, str, int, int, str]] = field(default_factory=list)
    logs: int = 0

    @property
    def viewers(self) -> list[Viewer]:
        return [
            self.retailer,
            self.distributor_a,
            self.distributor_b,
            self.vendor,
            self.auditor,
            self.member,
            self.anonymous,
        ]

    def record(self, sender: Viewer, label: str, receipt: Any) -> None:
        """Keep a confidential transaction of the story, to look for it after every step."""
        tx_hash = receipt["transactionHash"].to_0x_hex()
        if receipt["status"] != 1:
            raise StoryFailed(f"{label}: transaction {tx_hash} reverted")
        tx = rpc(sender.w3, "eth_getTransactionByHash", [tx_hash])
        if not tx:
            raise StoryFailed(f"{label}: its sender cannot read its own transaction {tx_hash}")
        self.story.append(StoryTx(label, tx_hash, receipt["blockNumber"], tx["input"]))

    def step(self, number: int, title: str) -> None:
        print(f"\n== Step {number}: {title}")

    def observe(self) -> None:
        expected = Expected(
            code=len(HexBytes(self.artifact["deployedBytecode"])),
            orders=tuple(self.orders),
            txs=len(self.story),
            logs=self.logs,
        )
        rows = []
        for viewer in self.viewers:
            party = viewer.account is not None and viewer.address in self.parties
            sight = look(viewer, self.contract.address, self.story)
            trouble = problems(sight, party, expected)
            self.failures += [f"{viewer.name}: {text}" for text in trouble]
            rows.append((viewer, party, sight, trouble))
        print_table(rows, len(self.story))

    def play(self) -> None:
        a, b = self.distributor_a, self.distributor_b
        print(f"node {self.url}, chain id {self.retailer.w3.eth.chain_id}")
        for viewer in self.viewers:
            who = viewer.address if viewer.account else "(no token)"
            print(f"  {viewer.name:<14} {who}")

        factory = self.retailer.w3.eth.contract(abi=self.artifact["abi"], bytecode=self.artifact["bytecode"])
        self.step(1, "the retailer deploys PurchaseOrders confidential to distributor A")
        print("  conclave_sendRawPrivateTransaction(rawTx, {privateFor: [distributor A]})")
        receipt = transact(self.retailer, factory.constructor(a.address), private_for=[a.address])
        self.record(self.retailer, "deploy", receipt)
        address = receipt["contractAddress"]
        self.contract = self.retailer.w3.eth.contract(address=address, abi=self.artifact["abi"])
        self.parties = {self.retailer.address, a.address}
        print(f"  contract {address} (block {receipt['blockNumber']})")
        self.observe()

        self.step(2, 'the retailer creates order 1: 250 x "Blue widgets" for distributor A')
        print(
            "  an ordinary eth_sendRawTransaction to the contract: confidential to its parties automatically"
        )
        receipt = transact(self.retailer, self.contract.functions.createOrder("Blue widgets", 250))
        self.record(self.retailer, "createOrder", receipt)
        (created,) = self.events("OrderCreated", receipt)
        order_id = created["args"]["id"]
        self.orders = [(order_id, "Blue widgets", 250, 1, ZERO_ADDRESS)]
        self.logs += 1
        self.observe()

        self.step(3, f"distributor A reads order {order_id} and accepts it")
        order = self.as_viewer(a).functions.getOrder(order_id).call()
        print(f"  distributor A reads: {order[4]} x {order[3]!r}, status {STATUS_NAMES[order[5]]}")
        receipt = transact(a, self.as_viewer(a).functions.acceptOrder(order_id))
        self.record(a, "acceptOrder", receipt)
        self.orders = [(order_id, "Blue widgets", 250, 2, ZERO_ADDRESS)]
        self.logs += 1
        self.observe()

        self.step(4, f"distributor A assigns the vendor to order {order_id}; isParty now names the vendor")
        receipt = transact(a, self.as_viewer(a).functions.assignVendor(order_id, self.vendor.address))
        self.record(a, "assignVendor", receipt)
        self.orders = [(order_id, "Blue widgets", 250, 3, self.vendor.address)]
        self.logs += 1
        self.parties.add(self.vendor.address)
        print(f"  distributor B tries acceptOrder({order_id}) on the contract anyway (gas 200000):")
        meddling = transact(b, self.as_viewer(b).functions.acceptOrder(order_id), gas=200_000)
        print(
            f"    status {meddling['status']}, {len(meddling['logs'])} logs, gas used {meddling['gasUsed']}: "
            "to distributor B the contract is an empty account"
        )
        if meddling["logs"]:
            self.failures.append("distributor B: its transaction to the contract ran the contract's code")
        self.observe()

        self.step(5, "the member proposes grant_reader(contract, auditor) and votes for it")
        self.grant_reader(address, self.auditor.address)
        self.parties.add(self.auditor.address)
        self.observe()

    def as_viewer(self, viewer: Viewer) -> Any:
        return viewer.w3.eth.contract(address=self.contract.address, abi=self.artifact["abi"])

    def events(self, name: str, receipt: Any) -> list[Any]:
        from web3.logs import DISCARD

        return list(getattr(self.contract.events, name)().process_receipt(receipt, errors=DISCARD))

    def grant_reader(self, contract: str, reader: str) -> None:
        """Through the governance contract, as any wallet can (`conclave gov propose
        grant_reader CONTRACT READER` does the same from the command line)."""
        gov = self.member.w3.eth.contract(address=GOVERNANCE_ADDRESS, abi=GOVERNANCE_ABI)
        args = abi_encode(["address", "address"], [contract, reader])
        receipt = transact(self.member, gov.functions.propose([("grant_reader", args)]))
        if receipt["status"] != 1:
            raise StoryFailed("the member's grant_reader proposal reverted")
        from web3.logs import DISCARD

        (created,) = gov.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        proposal = created["args"]["id"]
        print(f"  proposal {proposal}: grant_reader({contract}, auditor)")
        receipt = transact(self.member, gov.functions.vote(proposal, True))
        resolved = gov.events.ProposalResolved().process_receipt(receipt, errors=DISCARD)
        if receipt["status"] != 1 or not resolved or resolved[-1]["args"]["state"] != ACCEPTED:
            raise StoryFailed(f"proposal {proposal} was not accepted by the member's vote")
        print(f"  the member votes yes: proposal {proposal} accepted in block {receipt['blockNumber']}")


def run(url: str, mnemonic: str, wait: float) -> int:
    """Play the story against the node at `url`; the exit status."""
    try:
        artifact = json.loads(ARTIFACT_PATH.read_text())
    except OSError:
        print(
            f"error: {ARTIFACT_PATH} is missing: run `npm run compile` at the repository root",
            file=sys.stderr,
        )
        return 2
    try:
        wait_for_node(url, wait)
        names = ("member", "retailer", "distributor A", "distributor B", "vendor", "auditor")
        signed_in: dict[str, Viewer] = {}
        for index, name in enumerate(names):
            account = dev_account(mnemonic, index)
            token = sign_in(url, account)
            signed_in[name] = Viewer(name, account, web3_for(url, token))
        print("everyone signed in with Sign-In with Ethereum (a token each, sent as a bearer header)")
        demo = Demo(
            url=url,
            member=signed_in["member"],
            retailer=signed_in["retailer"],
            distributor_a=signed_in["distributor A"],
            distributor_b=signed_in["distributor B"],
            vendor=signed_in["vendor"],
            auditor=signed_in["auditor"],
            anonymous=Viewer("anonymous", None, web3_for(url, None)),
            artifact=artifact,
        )
        demo.play()
    except StoryFailed as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the node refused a step: say which, and stop
        print(f"\nerror: the story stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    print()
    if demo.failures:
        print(f"RESULT: FAILED ({len(demo.failures)} problems)")
        for failure in demo.failures:
            print(f"  {failure}")
        return 1
    print("RESULT: OK: every party saw the contract, its orders, transactions and events; nobody else did")
    return 0


def start_dev_node() -> tuple[subprocess.Popen[str], str]:
    """A throw-away dev node of this checkout on a free port: the process and its URL."""
    script = Path(sys.executable).with_name("conclave")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "gateway.cli"]
    command += ["dev", "--ephemeral", "--port", "0", "--json", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=HERE.parents[1], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise StoryFailed(f"`{' '.join(command)}` exited with {process.returncode} before it started")
    return process, json.loads(line)["rpcUrl"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rpc", default="http://127.0.0.1:8545", help="the dev node's URL (default: %(default)s)"
    )
    parser.add_argument(
        "--start-node",
        action="store_true",
        help="start a throw-away dev node of this checkout instead (conclave dev --ephemeral), stop it after",
    )
    parser.add_argument(
        "--mnemonic", default=TEST_MNEMONIC, help="the dev node's mnemonic (default: the test one)"
    )
    parser.add_argument(
        "--wait", type=float, default=30, help="seconds to wait for the node to answer (default: 30)"
    )
    args = parser.parse_args(argv)
    if not args.start_node:
        return run(args.rpc, args.mnemonic, args.wait)
    try:
        process, url = start_dev_node()
    except StoryFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return run(url, args.mnemonic, args.wait)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
