"""Governance on an in-process dev node: the ledger secret follows governance's rotations,
the minimum gas price it sets is suggested and enforced."""

from __future__ import annotations

from pathlib import Path

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from enclave.keystore import open_keystore
from gateway.node import Node
from governance.system_contract import GOVERNANCE_ADDRESS
from tests.gateway.inprocess import ALICE, BOB, call, error_of, make_node, request

GOVERNANCE = to_checksum_address(GOVERNANCE_ADDRESS)


def send(node, signature: str, types: list[str], values: list[object]) -> None:  # type: ignore[no-untyped-def]
    data = function_signature_to_4byte_selector(signature) + abi_encode(types, values)
    message = {"from": ALICE.address, "to": GOVERNANCE, "data": "0x" + data.hex()}
    tx = call(node, "eth_sendTransaction", message)
    node.ordering.seal()
    assert call(node, "eth_getTransactionReceipt", tx)["status"] == "0x1"


def test_an_accepted_rotation_gives_a_new_ledger_secret_that_stays(tmp_path: Path) -> None:
    node = make_node(dev_mode=True, enclave_dir=tmp_path)
    try:
        assert node.enclave.ledger_secret_version == 0  # type: ignore[attr-defined]
        send(node, "propose((string,bytes)[])", ["(string,bytes)[]"], [[("rotate_ledger_secret", b"")]])
        assert node.enclave.ledger_secret_version == 0  # type: ignore[attr-defined]  # proposed, not accepted
        send(node, "vote(uint256,bool)", ["uint256", "bool"], [1, True])
        assert node.enclave.ledger_secret_version == 1  # type: ignore[attr-defined]
        measurement = node.enclave.measurement
    finally:
        node.engine.dispose()
    reopened = open_keystore(tmp_path, measurement).ledger_secrets
    assert reopened.current_version == 1
    sealed = reopened.seal(b"purchase order 7", b"test")
    assert reopened.unseal(sealed, b"test") == b"purchase order 7"


def test_a_governed_minimum_gas_price_is_suggested_and_enforced(dev: Node) -> None:
    floor = 50 * 10**9
    send(
        dev,
        "propose((string,bytes)[])",
        ["(string,bytes)[]"],
        [[("set_config", abi_encode(["string", "uint256"], ["min_gas_price", floor]))]],
    )
    send(dev, "vote(uint256,bool)", ["uint256", "bool"], [1, True])
    assert int(call(dev, "eth_gasPrice"), 16) >= floor
    filled = call(dev, "eth_fillTransaction", {"from": ALICE.address, "to": BOB.address, "value": "0x1"})
    assert int(filled["tx"]["maxFeePerGas"], 16) >= floor
    cheap = ALICE.sign_transaction(
        {
            "to": BOB.address,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": floor - 1,
            "maxPriorityFeePerGas": 1,
            "nonce": 2,
            "chainId": dev.params.chain_id,
        }
    )
    refused = error_of(dev, request("eth_sendRawTransaction", ["0x" + cheap.raw_transaction.hex()]))
    assert "minimum gas price" in refused["message"] and str(floor) in refused["message"]
