"""Confidential transactions and contracts through every read path, on a real node.

The leak suite: a retailer creates a confidential contract for a partner, the partner
writes a secret into it (an ordinary transaction, confidential because the contract is),
and an outsider, anonymous or signed in as itself, asks every method that reads blocks,
transactions, receipts, logs, state, traces, raw data or the pool. No answer may contain
anything of the confidential transactions: their hashes, the contract's address, the
secret, its event topic. The parties see all of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from eth_bloom import BloomFilter
from eth_hash.auto import keccak
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput

from tests.e2e.chain_helpers import Signer, connect, run_conclave, wait_receipt
from tests.support.artifacts import load_artifact
from tests.support.devnode import DevNode, start_dev_node
from tests.support.sign_in import sign_in

SECRET = "purchase order 7731: 40 pallets of widgets at 12.50"
TAG = keccak(b"confidential-tag")
VAULT = load_artifact("Vault")
RELAY = load_artifact("Relay")
UNAUTHENTICATED = 4100


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("confidential-node")


@pytest.fixture(scope="module")
def node(data_dir: Path) -> Iterator[DevNode]:
    started = start_dev_node("--data-dir", str(data_dir))
    try:
        yield started
    finally:
        started.stop()


@dataclass
class Client:
    """Raw JSON-RPC as one caller: anonymous (no token) or signed in."""

    url: str
    token: str | None = None

    def rpc(self, method: str, params: list[Any] | None = None) -> dict[str, Any]:
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        return httpx.post(self.url, json=payload, headers=headers, timeout=30).json()  # type: ignore[no-any-return]

    def result(self, method: str, params: list[Any] | None = None) -> Any:
        answer = self.rpc(method, params)
        assert "error" not in answer, (method, answer)
        return answer["result"]


@dataclass
class World:
    node: DevNode
    w3: Web3
    retailer: Signer
    partner: Signer
    outsider: Signer
    tokens: dict[str, str]
    vault: str
    creation: str
    write: str
    blocks: tuple[int, int]
    relay: str
    failed: str
    """A confidential transaction that reverted (the partner may not invite)."""
    filters: dict[str | None, list[str]]
    """Log, block and pending-transaction filters each outsider installed before it all."""

    def client(self, who: str | None) -> Client:
        return Client(self.node.rpc_url, None if who is None else self.tokens[who])

    @property
    def needles(self) -> list[str]:
        """What no answer to an outsider may contain (lower-case hex, no 0x)."""
        return [
            self.creation[2:].lower(),
            self.write[2:].lower(),
            self.failed[2:].lower(),
            self.vault[2:].lower(),
            SECRET.encode().hex(),
            TAG.hex(),
        ]


def _private_deploy(world_w3: Web3, signer: Signer, token: str, private_for: list[str], url: str) -> str:
    factory = world_w3.eth.contract(abi=VAULT["abi"], bytecode=VAULT["bytecode"])
    data = factory.constructor("opening terms").data_in_transaction
    signed = signer.sign(data=data, gas=2_000_000)
    answer = Client(url, token).rpc(
        "conclave_sendRawPrivateTransaction",
        ["0x" + signed.raw_transaction.hex(), {"privateFor": private_for}],
    )
    assert "error" not in answer, answer
    return str(answer["result"])


@pytest.fixture(scope="module")
def world(node: DevNode) -> World:
    w3 = connect(node)
    retailer, partner, outsider = (Signer(w3, account.key) for account in node.accounts[1:4])
    tokens = {
        name: sign_in(node.rpc_url, signer.account.key.hex())
        for name, signer in (("retailer", retailer), ("partner", partner), ("outsider", outsider))
    }
    filters = {
        who: [
            Client(node.rpc_url, None if who is None else tokens[who]).result(method, params)
            for method, params in (
                ("eth_newFilter", [{}]),
                ("eth_newBlockFilter", []),
                ("eth_newPendingTransactionFilter", []),
            )
        ]
        for who in (None, "outsider")
    }
    first = w3.eth.block_number + 1
    creation = _private_deploy(w3, retailer, tokens["retailer"], [partner.address], node.rpc_url)
    party_w3 = Web3(
        Web3.HTTPProvider(
            node.rpc_url, request_kwargs={"headers": {"Authorization": f"Bearer {tokens['retailer']}"}}
        )
    )
    receipt = wait_receipt(party_w3, creation)
    assert receipt["status"] == 1
    vault = receipt["contractAddress"]
    contract = w3.eth.contract(address=vault, abi=VAULT["abi"])
    write_data = contract.functions.write(SECRET, TAG)._encode_transaction_data()
    write = partner.sign(to=vault, data=write_data, gas=300_000)
    write_hash = "0x" + w3.eth.send_raw_transaction(write.raw_transaction).hex().removeprefix("0x")
    partner_w3 = Web3(
        Web3.HTTPProvider(
            node.rpc_url, request_kwargs={"headers": {"Authorization": f"Bearer {tokens['partner']}"}}
        )
    )
    assert wait_receipt(partner_w3, write_hash)["status"] == 1
    invite = partner.sign(
        to=vault, data=contract.functions.invite(partner.address)._encode_transaction_data(), gas=100_000
    )
    failed = "0x" + w3.eth.send_raw_transaction(invite.raw_transaction).hex().removeprefix("0x")
    assert wait_receipt(partner_w3, failed)["status"] == 0
    relay_receipt = outsider.transact(data=RELAY["bytecode"], gas=1_000_000)
    last = w3.eth.block_number
    return World(
        node,
        w3,
        retailer,
        partner,
        outsider,
        tokens,
        vault,
        creation,
        write_hash,
        (first, last),
        relay_receipt["contractAddress"],
        failed,
        filters,
    )


def _assert_nothing_leaks(world: World, method: str, params: list[Any], answer: Any) -> None:
    text = json.dumps(answer).lower()
    for needle in world.needles:
        assert needle not in text, f"{method}{params} leaked {needle}: {text[:400]}"


def _probes(world: World) -> list[tuple[str, list[Any]]]:
    first, last = world.blocks
    vault = world.vault
    note_call = {"to": vault, "data": "0x" + keccak(b"note()")[:4].hex()}
    blocks = [hex(number) for number in range(first, last + 1)]
    probes: list[tuple[str, list[Any]]] = []
    for tx_hash in (world.creation, world.write, world.failed):
        probes += [
            ("eth_getTransactionByHash", [tx_hash]),
            ("eth_getTransactionReceipt", [tx_hash]),
            ("debug_traceTransaction", [tx_hash]),
            ("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}]),
            ("debug_getRawTransaction", [tx_hash]),
            ("conclave_getTransactionProof", [tx_hash]),
        ]
    for block in blocks:
        probes += [
            ("eth_getBlockByNumber", [block, True]),
            ("eth_getBlockByNumber", [block, False]),
            ("eth_getBlockReceipts", [block]),
            ("eth_getBlockTransactionCountByNumber", [block]),
            ("eth_getTransactionByBlockNumberAndIndex", [block, "0x0"]),
            ("eth_getTransactionByBlockNumberAndIndex", [block, "0x1"]),
            ("debug_traceBlockByNumber", [block]),
            ("debug_traceBlockByNumber", [block, {"tracer": "callTracer"}]),
            ("debug_getRawBlock", [block]),
            ("debug_getRawReceipts", [block]),
            ("eth_getBlockAccessList", [block]),
        ]
    probes += [
        ("eth_getLogs", [{"fromBlock": hex(first), "toBlock": hex(last)}]),
        ("eth_getLogs", [{"fromBlock": hex(first), "toBlock": hex(last), "address": vault}]),
        (
            "eth_getLogs",
            [{"fromBlock": hex(first), "toBlock": hex(last), "topics": [None, None, "0x" + TAG.hex()]}],
        ),
        ("eth_getCode", [vault, "latest"]),
        ("eth_getBalance", [vault, "latest"]),
        ("eth_getTransactionCount", [vault, "latest"]),
        ("eth_getStorageAt", [vault, "0x0", "latest"]),
        ("eth_getStorageAt", [vault, "0x1", "latest"]),
        ("eth_getProof", [vault, ["0x0", "0x1"], "latest"]),
        ("eth_call", [note_call, "latest"]),
        ("eth_call", [{**note_call, "from": world.partner.address}, "latest"]),
        ("eth_estimateGas", [note_call, "latest"]),
        ("eth_createAccessList", [note_call, "latest"]),
        ("debug_traceCall", [note_call, "latest"]),
        ("debug_traceCall", [note_call, "latest", {"tracer": "callTracer"}]),
        ("eth_simulateV1", [{"blockStateCalls": [{"calls": [note_call]}], "traceTransfers": True}, "latest"]),
        ("txpool_content", []),
        ("txpool_inspect", []),
    ]
    return probes


@pytest.mark.parametrize("who", [None, "outsider"])
def test_filters_installed_by_an_outsider_report_nothing_confidential(world: World, who: str | None) -> None:
    client = world.client(who)
    logs, blocks, pending = world.filters[who]
    answers = {}
    for method, params in (
        ("eth_getFilterChanges", [logs]),
        ("eth_getFilterLogs", [logs]),
        ("eth_getFilterChanges", [blocks]),
        ("eth_getFilterChanges", [pending]),
    ):
        answer = client.rpc(method, params)
        assert "error" not in answer, answer
        _assert_nothing_leaks(world, method, params, answer)
        answers[method, params[0]] = answer["result"]
    assert answers["eth_getFilterChanges", blocks], "the block filter saw the blocks"
    assert answers["eth_getFilterChanges", pending], "the pending filter saw the public transactions"


def _twin(world: World, params: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """`params` with each confidential hash or address replaced by an unknown one, and the
    replacements made."""
    text = json.dumps(params)
    swaps: dict[str, str] = {}
    for needle in world.needles[:4]:
        if needle in text.lower():
            swaps[needle] = os.urandom(len(needle) // 2).hex()
    for needle, unknown in swaps.items():
        text = re.sub(needle, unknown, text, flags=re.IGNORECASE)
    return json.loads(text), swaps


@pytest.mark.parametrize("who", [None, "outsider"])
def test_an_outsider_learns_nothing_by_any_method(world: World, who: str | None) -> None:
    """Every answer holds nothing confidential; asked about a confidential hash or the
    contract, it is the answer about an unknown hash or an empty account."""
    client = world.client(who)
    for method, params in _probes(world):
        answer = client.rpc(method, params)
        twin_params, swaps = _twin(world, params)
        if not swaps:
            _assert_nothing_leaks(world, method, params, answer)
            continue
        twin = json.dumps(client.rpc(method, twin_params)).lower()
        for needle, unknown in swaps.items():
            twin = twin.replace(unknown, needle)
        if method == "eth_getProof":  # a confidential account has no proof nodes (documented)
            assert answer["result"]["accountProof"] == []
            continue
        if method == "eth_simulateV1":  # simulated blocks commit to the calls: compare their results
            answer = [block["calls"] for block in answer["result"]]
            twin = json.dumps([block["calls"] for block in json.loads(twin)["result"]])
        assert json.dumps(answer).lower() == twin, (method, params)


@pytest.mark.parametrize("who", [None, "outsider"])
def test_to_an_outsider_the_contract_is_an_empty_account_and_the_hashes_unknown(
    world: World, who: str | None
) -> None:
    client = world.client(who)
    for tx_hash in (world.creation, world.write):
        assert client.result("eth_getTransactionByHash", [tx_hash]) is None
        assert client.result("eth_getTransactionReceipt", [tx_hash]) is None
    assert client.result("eth_getCode", [world.vault, "latest"]) == "0x"
    assert int(client.result("eth_getBalance", [world.vault, "latest"]), 16) == 0
    assert int(client.result("eth_getStorageAt", [world.vault, "0x0", "latest"]), 16) == 0
    note = {"to": world.vault, "data": "0x" + keccak(b"note()")[:4].hex()}
    assert client.result("eth_call", [note, "latest"]) == "0x"
    proof = client.result("eth_getProof", [world.vault, [], "latest"])
    assert proof["accountProof"] == [] and int(proof["nonce"], 16) == 0


def test_blocks_still_verify_and_their_bloom_holds_no_confidential_topic(world: World) -> None:
    client = world.client(None)
    first, last = world.blocks
    for number in range(first, last + 1):
        block = client.result("eth_getBlockByNumber", [hex(number), False])
        raw_header = bytes.fromhex(client.result("debug_getRawHeader", [hex(number)])[2:])
        assert "0x" + keccak(raw_header).hex() == block["hash"]
        bloom = BloomFilter(int(block["logsBloom"], 16))
        assert bytes.fromhex(world.vault[2:]) not in bloom
        assert TAG not in bloom
    counts = [
        int(client.result("eth_getBlockTransactionCountByNumber", [hex(n)]), 16)
        for n in range(first, last + 1)
    ]
    assert sum(counts) == 1, "only the relay's deployment is public"


def test_the_parties_see_everything(world: World) -> None:
    for who in ("retailer", "partner"):
        client = world.client(who)
        assert client.result("eth_getTransactionReceipt", [world.failed])["status"] == "0x0", (
            "failed ones too"
        )
        receipt = client.result("eth_getTransactionReceipt", [world.write])
        assert receipt["status"] == "0x1" and receipt["logs"], who
        (log,) = receipt["logs"]
        assert log["address"].lower() == world.vault.lower() and log["topics"][2] == "0x" + TAG.hex()
        tx = client.result("eth_getTransactionByHash", [world.write])
        assert tx["from"] == world.partner.address and tx["to"].lower() == world.vault.lower()
        assert client.result("eth_getTransactionByHash", [world.creation])["from"] == world.retailer.address
        assert client.result("eth_getCode", [world.vault, "latest"]) == VAULT["deployedBytecode"]
        contract = world.w3.eth.contract(address=world.vault, abi=VAULT["abi"])
        note = {"to": world.vault, "data": contract.functions.note()._encode_transaction_data()}
        (decoded,) = world.w3.codec.decode(
            ["string"], bytes.fromhex(client.result("eth_call", [note, "latest"])[2:])
        )
        assert decoded == SECRET
        first, last = world.blocks
        logs = client.result(
            "eth_getLogs", [{"fromBlock": hex(first), "toBlock": hex(last), "address": world.vault}]
        )
        assert [entry["transactionHash"] for entry in logs] == [world.write]
        block = client.result("eth_getBlockByNumber", [receipt["blockNumber"], True])
        assert world.write in [entry["hash"] for entry in block["transactions"]]
        receipts = client.result("eth_getBlockReceipts", [receipt["blockNumber"]])
        assert world.write in [entry["transactionHash"] for entry in receipts]
        (trace,) = [
            t
            for t in client.result("debug_traceBlockByNumber", [receipt["blockNumber"]])
            if t["txHash"] == world.write
        ]
        assert not trace["result"]["failed"]
        assert client.result("debug_traceTransaction", [world.write])["structLogs"]
        raw = client.result("debug_getRawTransaction", [world.write])
        assert "0x" + keccak(bytes.fromhex(raw[2:])).hex() == world.write


def test_web3_with_the_token_in_a_header_and_in_the_url(world: World) -> None:
    token = world.tokens["partner"]
    by_header = Web3(
        Web3.HTTPProvider(
            world.node.rpc_url, request_kwargs={"headers": {"Authorization": f"Bearer {token}"}}
        )
    )
    by_url = Web3(Web3.HTTPProvider(world.node.rpc_url.rstrip("/") + f"/rpc/{token}"))
    for w3 in (by_header, by_url):
        contract = w3.eth.contract(address=world.vault, abi=VAULT["abi"])
        assert contract.functions.note().call() == SECRET
        assert w3.eth.get_transaction_receipt(world.write)["status"] == 1
    anonymous = world.w3.eth.contract(address=world.vault, abi=VAULT["abi"])
    with pytest.raises(BadFunctionCallOutput):  # an empty account answers nothing to decode
        anonymous.functions.note().call()


def test_an_auditor_granted_by_governance_sees_the_contract(world: World) -> None:
    node = world.node
    auditor = Signer(world.w3, node.accounts[5].key)
    token = sign_in(node.rpc_url, auditor.account.key.hex())
    client = Client(node.rpc_url, token)
    assert client.result("eth_getCode", [world.vault, "latest"]) == "0x"
    assert client.result("eth_getTransactionReceipt", [world.write]) is None
    member = ("--key", node.accounts[0].key, "--rpc", node.rpc_url, "--json")
    proposed = run_conclave("gov", "propose", "grant_reader", world.vault, auditor.address, *member)
    assert proposed.returncode == 0, proposed.stderr
    voted = run_conclave("gov", "vote", str(json.loads(proposed.stdout)["id"]), "yes", *member)
    assert voted.returncode == 0, voted.stderr
    assert client.result("eth_getCode", [world.vault, "latest"]) == VAULT["deployedBytecode"]
    assert client.result("eth_getTransactionReceipt", [world.write])["status"] == "0x1"


def test_outsiders_reach_an_empty_account_and_move_no_ether(world: World) -> None:
    contract = world.w3.eth.contract(address=world.vault, abi=VAULT["abi"])
    write = contract.functions.write("overwritten by an outsider", TAG)._encode_transaction_data()
    receipt = world.outsider.transact(to=world.vault, data=write, gas=200_000)
    assert receipt["status"] == 1 and receipt["logs"] == [], "as a call to an empty account"
    paid = world.outsider.transact(to=world.vault, value=10**18, gas=50_000)
    assert paid["status"] == 0
    party = world.client("partner")
    note = {"to": world.vault, "data": contract.functions.note()._encode_transaction_data()}
    (decoded,) = world.w3.codec.decode(
        ["string"], bytes.fromhex(party.result("eth_call", [note, "latest"])[2:])
    )
    assert decoded == SECRET
    assert int(party.result("eth_getBalance", [world.vault, "latest"]), 16) == 0


def test_only_the_signed_in_sender_sends_a_confidential_transaction(world: World) -> None:
    signed = world.outsider.sign(to=world.outsider.address, value=1, gas=21_000)
    raw = "0x" + signed.raw_transaction.hex()
    options = {"privateFor": [world.partner.address]}
    for who in (None, "partner"):
        answer = world.client(who).rpc("conclave_sendRawPrivateTransaction", [raw, options])
        assert answer["error"]["code"] == UNAUTHENTICATED, answer
        assert "sign in as" in answer["error"]["message"]
    bad = world.client("outsider").rpc("conclave_sendRawPrivateTransaction", [raw, {"privateFor": ["0x12"]}])
    assert bad["error"]["code"] == -32602


WATCHERS = (None, "outsider", "retailer")


def test_a_waiting_confidential_transaction_is_shown_to_its_audience_only(world: World) -> None:
    partner = world.partner
    contract = world.w3.eth.contract(address=world.vault, abi=VAULT["abi"])
    data = contract.functions.write(SECRET + " (pending)", TAG)._encode_transaction_data()
    nonce = partner.nonce()
    filters = {who: world.client(who).result("eth_newPendingTransactionFilter") for who in WATCHERS}
    gap = partner.sign(to=world.vault, data=data, gas=300_000, nonce=nonce + 1)
    waiting = "0x" + world.w3.eth.send_raw_transaction(gap.raw_transaction).hex().removeprefix("0x")
    try:
        seen = {who: world.client(who).result("eth_getFilterChanges", [filters[who]]) for who in WATCHERS}
        assert waiting in seen["retailer"] and waiting not in seen["outsider"] and waiting not in seen[None]
        stolen = world.client("outsider").rpc("eth_getFilterChanges", [filters["retailer"]])
        assert stolen["error"]["message"] == "filter not found"  # a party's filter answers that party only
        for who in (None, "outsider"):
            client = world.client(who)
            assert client.result("eth_getTransactionByHash", [waiting]) is None
            for method in ("txpool_content", "txpool_inspect"):
                text = json.dumps(client.result(method)).lower()
                assert waiting[2:] not in text and world.vault[2:].lower() not in text
            assert int(client.result("txpool_status")["queued"], 16) == 0
        party = world.client("retailer")
        assert party.result("eth_getTransactionByHash", [waiting])["hash"] == waiting
        assert waiting[2:] in json.dumps(party.result("txpool_content")).lower()
    finally:
        filler = partner.sign(to=partner.address, value=0, gas=21_000, nonce=nonce)
        world.w3.eth.send_raw_transaction(filler.raw_transaction)
        wait_receipt(world.w3, filler.hash)


def _ws_url(node: DevNode, path: str) -> str:
    parts = urlsplit(node.rpc_url)
    return f"ws://{parts.netloc}{path}"


def test_events_reach_parties_over_websocket_and_no_one_else(world: World) -> None:
    node = world.node
    contract = world.w3.eth.contract(address=world.vault, abi=VAULT["abi"])
    relay = world.w3.eth.contract(address=world.relay, abi=RELAY["abi"])

    async def collect(
        url: str, headers: dict[str, str], ready: threading.Event, done: threading.Event
    ) -> list[Any]:
        seen: list[Any] = []
        async with websockets.connect(url, additional_headers=headers) as ws:
            for kind in (["logs", {}], ["newPendingTransactions"]):
                await ws.send(
                    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": kind})
                )
                assert "result" in json.loads(await ws.recv())
            ready.set()
            while not done.is_set():
                try:
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2))["params"]["result"])
                except TimeoutError:
                    continue
        return seen

    subscribers = {
        "outsider": (_ws_url(node, "/ws"), {"Authorization": f"Bearer {world.tokens['outsider']}"}),
        "anonymous": (_ws_url(node, "/ws"), {}),
        "partner": (_ws_url(node, f"/rpc/{world.tokens['partner']}"), {}),
    }
    results: dict[str, list[Any]] = {}
    done = threading.Event()
    readies = {name: threading.Event() for name in subscribers}

    def run(name: str) -> None:
        url, headers = subscribers[name]
        results[name] = asyncio.run(collect(url, headers, readies[name], done))

    threads = [threading.Thread(target=run, args=(name,)) for name in subscribers]
    for thread in threads:
        thread.start()
    for ready in readies.values():
        assert ready.wait(20)
    secret = world.partner.sign(
        to=world.vault,
        data=contract.functions.write(SECRET + " (live)", TAG)._encode_transaction_data(),
        gas=300_000,
    )
    world.w3.eth.send_raw_transaction(secret.raw_transaction)
    public = world.outsider.sign(
        to=world.relay,
        data=relay.functions.relay(world.outsider.address, b"")._encode_transaction_data(),
        gas=200_000,
    )
    world.w3.eth.send_raw_transaction(public.raw_transaction)
    wait_receipt(world.w3, public.hash)
    party_w3 = Web3(Web3.HTTPProvider(node.rpc_url.rstrip("/") + f"/rpc/{world.tokens['partner']}"))
    wait_receipt(party_w3, secret.hash)
    time.sleep(1.0)  # the last notifications are on their way
    done.set()
    for thread in threads:
        thread.join(20)
    secret_hash = "0x" + secret.hash.hex().removeprefix("0x")
    for name in ("outsider", "anonymous"):
        text = json.dumps(results[name]).lower()
        assert world.relay[2:].lower() in text, f"{name} got the public event"
        for needle in (secret_hash[2:], world.vault[2:].lower(), TAG.hex()):
            assert needle not in text, f"{name} got {needle}"
    partner_logs = [entry for entry in results["partner"] if isinstance(entry, dict) and "topics" in entry]
    assert any(entry["transactionHash"] == secret_hash for entry in partner_logs)
    assert secret_hash in results["partner"], "the party sees its own waiting transaction"


def test_the_database_never_holds_a_confidential_payload_in_clear(world: World, data_dir: Path) -> None:
    """Transactions, receipts, logs and the contract's code and storage are stored sealed:
    the raw database files (and the SQLite write-ahead log) hold none of them."""
    files = [path for path in data_dir.rglob("*") if path.is_file() and "enclave" not in path.parts]
    assert any(
        path.name.endswith(".db") or ".db-" in path.name or path.suffix == ".sqlite" for path in files
    ), files
    raw = b"".join(path.read_bytes() for path in files)
    assert bytes.fromhex(RELAY["bytecode"][2:])[:64] in raw, (
        "a public transaction's payload is there in clear"
    )
    # (The tag is not looked for: an outsider's own public transaction above carries it.)
    for secret in (SECRET.encode(), bytes.fromhex(VAULT["deployedBytecode"][2:])[:64]):
        assert secret not in raw, f"{secret[:24]!r}… found in the database files"


def test_the_ledger_with_confidential_transactions_verifies_by_replay(world: World, data_dir: Path) -> None:
    """`conclave ledger verify` opens the sealed transactions in the enclave, replays them
    with their parties and finds the same blocks and sealed records (run last: it stops
    the node)."""
    assert world.node.stop() == 0
    run = run_conclave("ledger", "verify", "--data-dir", str(data_dir), "--json", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is True and report["transactions"] >= 6, report
    backup = data_dir.parent / f"{data_dir.name}-export.sqlite"
    exported = run_conclave("ledger", "export", str(backup), "--data-dir", str(data_dir), timeout=120)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert SECRET.encode() not in backup.read_bytes(), "an export holds confidential data only sealed"
