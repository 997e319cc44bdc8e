"""End-to-end: eth_getProof verified with the trie library against the block's state root,
and eth_getStorageValues, through web3.py against a real node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import rlp
from eth.rlp.accounts import Account as AccountRecord
from eth_hash.auto import keccak
from trie import HexaryTrie
from web3 import Web3

from tests.e2e.chain_helpers import Signer, connect, fresh_account
from tests.support.devnode import DevNode, start_dev_node
from tests.support.spec import validate_result

EMPTY_CODE_HASH = keccak(b"")
EMPTY_ROOT = keccak(rlp.encode(b""))


@pytest.fixture(scope="module")
def proof_node() -> Iterator[DevNode]:
    node = start_dev_node("--ephemeral")
    yield node
    node.stop()


def _verified(w3: Web3, address: str, slots: list[int], block: int) -> dict[str, object]:
    """Fetch eth_getProof and check every node of it against the block's state root."""
    proof = w3.eth.get_proof(address, slots, block)
    raw = w3.provider.make_request("eth_getProof", [address, [hex(s) for s in slots], hex(block)])["result"]
    validate_result("eth_getProof", raw)
    state_root = w3.eth.get_block(block)["stateRoot"]
    nodes = [rlp.decode(bytes(node)) for node in proof["accountProof"]]
    encoded = HexaryTrie.get_from_proof(bytes(state_root), keccak(bytes.fromhex(address[2:])), nodes)
    if encoded:
        account = rlp.decode(encoded, sedes=AccountRecord)
        assert (account.nonce, account.balance) == (proof["nonce"], proof["balance"])
        assert (account.storage_root, account.code_hash) == (
            bytes(proof["storageHash"]),
            bytes(proof["codeHash"]),
        )
    else:
        assert (proof["nonce"], proof["balance"]) == (0, 0)
        assert bytes(proof["codeHash"]) == EMPTY_CODE_HASH and bytes(proof["storageHash"]) == EMPTY_ROOT
    for slot, entry in zip(slots, proof["storageProof"], strict=True):
        slot_nodes = [rlp.decode(bytes(node)) for node in entry["proof"]]
        stored = HexaryTrie.get_from_proof(
            bytes(proof["storageHash"]), keccak(slot.to_bytes(32, "big")), slot_nodes
        )
        assert (int.from_bytes(rlp.decode(stored), "big") if stored else 0) == _int(entry["value"])
    return dict(raw)


def _int(value: object) -> int:
    """web3.py gives storage values as bytes, balances as ints, the JSON as hex."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16)
    return int.from_bytes(bytes(value), "big")  # type: ignore[arg-type]


def test_proofs_of_accounts_and_slots_verify_against_the_state_root(proof_node: DevNode) -> None:
    w3 = connect(proof_node)
    signer = Signer(w3, proof_node.accounts[0].key)
    probe, receipt = signer.deploy("Probe")
    before = receipt["blockNumber"]
    signer.call_fn(probe.functions.set(41))
    after = w3.eth.block_number

    set_at_slot0 = _verified(w3, probe.address, [0, 1, 2**255], after)
    assert _int(set_at_slot0["storageProof"][0]["value"]) == 41
    assert _int(set_at_slot0["storageProof"][2]["value"]) == 0  # an absent slot is proven absent
    assert _int(_verified(w3, probe.address, [0], before)["storageProof"][0]["value"]) == 0  # history
    eoa = _verified(w3, signer.address, [], after)
    assert _int(eoa["nonce"]) == w3.eth.get_transaction_count(signer.address, after)
    assert _int(_verified(w3, fresh_account().address, [5], after)["balance"]) == 0


def test_storage_values_of_several_accounts_at_once(proof_node: DevNode) -> None:
    w3 = connect(proof_node)
    signer = Signer(w3, proof_node.accounts[1].key)
    probe, _ = signer.deploy("Probe")
    signer.call_fn(probe.functions.set(7))
    nobody = fresh_account().address
    request = {probe.address: ["0x0", "0x1"], nobody: ["0x" + "ff" * 32]}
    values = proof_node.result("eth_getStorageValues", [request, "latest"])
    validate_result("eth_getStorageValues", values)
    assert values[probe.address] == ["0x" + "00" * 31 + "07", "0x" + "00" * 32]
    assert values[nobody] == ["0x" + "00" * 32]


@pytest.mark.parametrize(
    ("method", "params", "fragment"),
    [
        ("eth_getProof", ["0x12", [], "latest"], "invalid argument 0"),
        ("eth_getProof", ["0x" + "00" * 20, ["0x" + "00" * 33], "latest"], "at most 32 bytes"),
        ("eth_getProof", ["0x" + "00" * 20, ["0x0"] * 1025, "latest"], "at most 1024"),
        ("eth_getStorageValues", [{"0x" + "00" * 20: ["0x0"] * 1025}], "at most 1024"),
        ("eth_getStorageValues", [["0x0"]], "expected an object"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    proof_node: DevNode, method: str, params: list[object], fragment: str
) -> None:
    error = proof_node.rpc(method, params)["error"]
    assert error["code"] == -32602 and fragment in error["message"]


def test_an_access_list_predicts_the_gas_of_the_transaction_that_uses_it(proof_node: DevNode) -> None:
    w3 = connect(proof_node)
    signer = Signer(w3, proof_node.accounts[2].key)
    token, _ = signer.deploy("ConclaveToken", "Access", "AX", 10**24)
    receiver = fresh_account().address
    data = token.functions.transfer(receiver, 5)._encode_transaction_data()
    request = {"from": signer.address, "to": token.address, "data": data}
    raw = proof_node.result("eth_createAccessList", [request, "latest"])
    validate_result("eth_createAccessList", raw)
    [entry] = raw["accessList"]
    assert entry["address"] == token.address and len(entry["storageKeys"]) == 2  # both balances
    predicted = int(raw["gasUsed"], 16)
    assert w3.eth.create_access_list(request)["gasUsed"] == predicted  # web3.py reads it too
    receipt = signer.transact(to=token.address, data=data, accessList=raw["accessList"], gas=100_000)
    assert receipt["status"] == 1 and receipt["gasUsed"] == predicted


def test_an_access_list_follows_nested_calls_and_reports_reverts(proof_node: DevNode) -> None:
    w3 = connect(proof_node)
    signer = Signer(w3, proof_node.accounts[3].key)
    probe, _ = signer.deploy("Probe")
    signer.call_fn(probe.functions.spawnChild(1))
    child = probe.functions.lastChild().call()

    def request(data: str) -> dict[str, str]:
        return {"from": signer.address, "to": probe.address, "data": data}

    ping = request(probe.functions.pingChild(2)._encode_transaction_data())
    listed = proof_node.result("eth_createAccessList", [ping])["accessList"]
    entries = {entry["address"]: entry["storageKeys"] for entry in listed}
    assert entries[child] == ["0x" + "00" * 32]  # the child's counter, reached through a nested call
    assert entries[probe.address]  # the recipient only for its slots: it is warm anyway
    fail = request(probe.functions.revertWithReason()._encode_transaction_data())
    answer = proof_node.result("eth_createAccessList", [fail])
    assert "reverted" in answer["error"]
