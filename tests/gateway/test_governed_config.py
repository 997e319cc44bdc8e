"""The network configuration governance sets is what the node applies: the block gas limit
and free gas (block rules read from the parent's state). The block time and the request
size are tested on a real node (tests/e2e/test_governance.py)."""

from __future__ import annotations

from pathlib import Path

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from enclave.sealed_state import node_ledger_secrets
from enclave.verification import verify_ledger
from gateway.node import Node
from governance.system_contract import GOVERNANCE_ADDRESS
from tests.gateway.inprocess import ALICE, BOB, call, make_node

GOVERNANCE = to_checksum_address(GOVERNANCE_ADDRESS)


def governance_calls(key: str, value: int) -> list[bytes]:
    """propose(set_config(key, value)) and vote(1, yes): the sole dev member decides alone."""
    action = ("set_config", abi_encode(["string", "uint256"], [key, value]))
    propose = function_signature_to_4byte_selector("propose((string,bytes)[])") + abi_encode(
        ["(string,bytes)[]"], [[action]]
    )
    vote = function_signature_to_4byte_selector("vote(uint256,bool)") + abi_encode(
        ["uint256", "bool"], [1, True]
    )
    return [propose, vote]


def govern(node: Node, key: str, value: int) -> None:
    for data in governance_calls(key, value):
        tx = call(
            node, "eth_sendTransaction", {"from": ALICE.address, "to": GOVERNANCE, "data": "0x" + data.hex()}
        )
        node.ordering.seal()
        assert call(node, "eth_getTransactionReceipt", tx)["status"] == "0x1"


def test_the_block_gas_limit_is_the_governed_one_and_the_chain_still_verifies(tmp_path: Path) -> None:
    dev = make_node(dev_mode=True, enclave_dir=tmp_path)  # verifying unseals the state with its keys
    govern(dev, "block_gas_limit", 40_000_000)
    call(dev, "eth_sendTransaction", {"from": ALICE.address, "to": BOB.address, "gas": hex(35_000_000)})
    dev.ordering.seal()
    block = call(dev, "eth_getBlockByNumber", "latest", False)
    assert block["gasLimit"] == hex(40_000_000) and len(block["transactions"]) == 1
    report = verify_ledger(dev.store, dev.params.chain_id, node_ledger_secrets(tmp_path))
    assert report.ok, report.discrepancies


def test_free_gas_makes_the_base_fee_zero_and_fee_less_transactions_pass(tmp_path: Path) -> None:
    dev = make_node(dev_mode=True, enclave_dir=tmp_path)
    govern(dev, "free_gas", 1)
    assert call(dev, "eth_gasPrice") == "0x0" and call(dev, "eth_maxPriorityFeePerGas") == "0x0"
    pauper = Account.create()  # holds no ether at all
    raw = pauper.sign_transaction(
        {
            "to": BOB.address,
            "value": 0,
            "gas": 21_000,
            "gasPrice": 0,
            "nonce": 0,
            "chainId": dev.params.chain_id,
        }
    ).raw_transaction
    tx = call(dev, "eth_sendRawTransaction", "0x" + raw.hex())
    dev.ordering.seal()
    assert call(dev, "eth_getTransactionReceipt", tx)["status"] == "0x1"
    assert call(dev, "eth_getBlockByNumber", "latest", False)["baseFeePerGas"] == "0x0"
    assert verify_ledger(dev.store, dev.params.chain_id, node_ledger_secrets(tmp_path)).ok
