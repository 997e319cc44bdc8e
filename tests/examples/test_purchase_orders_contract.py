"""The purchase-order contract of examples/purchase_orders, on py-evm in-process.

It must work as an ordinary contract (any EVM chain) and, deployed confidentially, admit
exactly the parties its `isParty` names: the retailer, the distributor and the vendors
the distributor assigns.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from evm_runtime.calls import CallContext, state_at
from evm_runtime.confidential import IS_PARTY_GAS, Reader, Visibility
from evm_runtime.exceptions import ExecutionReverted
from evm_runtime.transactions import CallRequest
from evm_runtime.types import Address
from tests.evm_runtime.chainkit import ACCOUNTS, MemoryChain, address_of, calldata, decoded, funded_chain

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = json.loads(
    (REPO_ROOT / "examples" / "purchase_orders" / "build" / "PurchaseOrders.json").read_text()
)
RETAILER, DISTRIBUTOR, OTHER_DISTRIBUTOR, VENDOR, AUDITOR, STRANGER = ACCOUNTS
ORDER_TYPE = "(uint256,address,address,string,uint256,uint8,uint64)"
CREATED, ACCEPTED, VENDOR_ASSIGNED = 1, 2, 3


def _topic(signature: str) -> bytes:
    return keccak(signature.encode())


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


def _word(address: Any) -> bytes:
    return bytes(12) + address_of(address)


class Deployment:
    """A chain with one PurchaseOrders between RETAILER and DISTRIBUTOR."""

    def __init__(self, *, private: bool = False) -> None:
        self.chain: MemoryChain = funded_chain()
        self.nonces: dict[str, int] = {}
        deploy = self.tx(
            RETAILER,
            None,
            bytes.fromhex(ARTIFACT["bytecode"][2:]) + abi_encode(["address"], [DISTRIBUTOR.address]),
            gas=3_000_000,
        )
        if private:
            deploy = dataclasses.replace(deploy, private_for=(address_of(DISTRIBUTOR),))
        (created,) = self.chain.build([deploy]).transactions
        assert created.status == 1
        assert created.contract_address is not None
        self.address = Address(created.contract_address)

    def tx(self, account: Any, to: bytes | None, data: bytes, gas: int = 500_000) -> Any:
        nonce = self.nonces.get(account.address, 0)
        self.nonces[account.address] = nonce + 1
        return decoded(account, nonce=nonce, to=to, data=data, gas=gas)

    def send(self, account: Any, signature: str, *args: Any) -> Any:
        (executed,) = self.chain.build(
            [self.tx(account, self.address, calldata(signature, *args))]
        ).transactions
        return executed

    def context(self, reader: Reader | None = None) -> CallContext:
        chain = self.chain
        extra = {} if reader is None else {"reader": reader}
        return CallContext(chain.head, chain.params, chain.cache, list(reversed(chain.hashes)), **extra)

    def call(self, signature: str, *args: Any, reader: Reader | None = None, gas: int = 5_000_000) -> Any:
        request = CallRequest(
            sender=address_of(STRANGER), to=self.address, gas=gas, data=calldata(signature, *args)
        )
        return self.context(reader).call(request)

    def view(self, signature: str, out: list[str], *args: Any, reader: Reader | None = None) -> Any:
        return abi_decode(out, self.call(signature, *args, reader=reader).output)

    def order(self, order_id: int, reader: Reader | None = None) -> tuple[Any, ...]:
        (order,) = self.view("getOrder(uint256)", [ORDER_TYPE], order_id, reader=reader)
        return order

    def is_party(self, account: Any) -> bool:
        (answer,) = self.view("isParty(address)", ["bool"], account.address)
        return answer

    def reverts_with(self, error: str, account: Any, signature: str, *args: Any) -> bytes:
        """Send a transaction expected to fail, and check the custom error eth_call gives for it."""
        request = CallRequest(
            sender=address_of(account), to=self.address, gas=500_000, data=calldata(signature, *args)
        )
        with pytest.raises(ExecutionReverted) as raised:
            self.context().call(request)
        assert raised.value.data[:4] == _selector(error), raised.value.data.hex()
        executed = self.send(account, signature, *args)
        assert executed.status == 0
        return raised.value.data[4:]


@pytest.fixture
def deployment() -> Deployment:
    return Deployment()


def test_the_whole_story_as_an_ordinary_contract(deployment: Deployment) -> None:
    d = deployment
    assert d.view("retailer()", ["address"]) == (RETAILER.address.lower(),)
    assert d.view("distributor()", ["address"]) == (DISTRIBUTOR.address.lower(),)

    created = d.send(RETAILER, "createOrder(string,uint256)", "Blue widgets", 250)
    assert created.status == 1
    (log,) = created.logs
    assert log.address == d.address
    assert log.topics == (
        _topic("OrderCreated(uint256,address,address,string,uint256)"),
        (1).to_bytes(32, "big"),
        _word(RETAILER),
        _word(DISTRIBUTOR),
    )
    assert abi_decode(["string", "uint256"], log.data) == ("Blue widgets", 250)
    order = d.order(1)
    assert order[:6] == (1, DISTRIBUTOR.address.lower(), "0x" + "00" * 20, "Blue widgets", 250, CREATED)
    assert order[6] == d.chain.head.timestamp

    accepted = d.send(DISTRIBUTOR, "acceptOrder(uint256)", 1)
    (log,) = accepted.logs
    assert log.topics == (
        _topic("OrderAccepted(uint256,address)"),
        (1).to_bytes(32, "big"),
        _word(DISTRIBUTOR),
    )
    assert d.order(1)[5] == ACCEPTED

    assert not d.is_party(VENDOR)
    assigned = d.send(DISTRIBUTOR, "assignVendor(uint256,address)", 1, VENDOR.address)
    (log,) = assigned.logs
    assert log.topics == (
        _topic("VendorAssigned(uint256,address,address)"),
        (1).to_bytes(32, "big"),
        _word(DISTRIBUTOR),
        _word(VENDOR),
    )
    assert d.order(1)[2] == VENDOR.address.lower() and d.order(1)[5] == VENDOR_ASSIGNED
    assert d.view("vendorOrderCount(address)", ["uint256"], VENDOR.address) == (1,)

    second = d.send(RETAILER, "createOrder(string,uint256)", "Red gadgets", 3)
    assert second.status == 1
    assert d.view("orderCount()", ["uint256"]) == (2,)
    (orders,) = d.view("getOrders()", [f"{ORDER_TYPE}[]"])
    assert [(o[0], o[3], o[5]) for o in orders] == [
        (1, "Blue widgets", VENDOR_ASSIGNED),
        (2, "Red gadgets", CREATED),
    ]


def test_is_party_names_the_retailer_the_distributor_and_assigned_vendors(deployment: Deployment) -> None:
    d = deployment
    assert d.is_party(RETAILER) and d.is_party(DISTRIBUTOR)
    for outsider in (OTHER_DISTRIBUTOR, VENDOR, AUDITOR, STRANGER):
        assert not d.is_party(outsider)
    d.send(RETAILER, "createOrder(string,uint256)", "Bolts", 1)
    d.send(DISTRIBUTOR, "acceptOrder(uint256)", 1)
    d.send(DISTRIBUTOR, "assignVendor(uint256,address)", 1, VENDOR.address)
    assert d.is_party(VENDOR)
    assert not d.is_party(OTHER_DISTRIBUTOR) and not d.is_party(AUDITOR)
    # The node gives isParty a small gas budget: it must stay far below it.
    used = d.call("isParty(address)", VENDOR.address).gas_used - 21_000
    assert used < IS_PARTY_GAS // 10, used


def test_only_the_right_party_acts_at_the_right_time(deployment: Deployment) -> None:
    d = deployment
    who = d.reverts_with("NotRetailer(address)", DISTRIBUTOR, "createOrder(string,uint256)", "x", 1)
    assert who == _word(DISTRIBUTOR)
    d.reverts_with("EmptyOrder()", RETAILER, "createOrder(string,uint256)", "", 1)
    d.reverts_with("EmptyOrder()", RETAILER, "createOrder(string,uint256)", "x", 0)
    d.reverts_with("NoSuchOrder(uint256)", DISTRIBUTOR, "acceptOrder(uint256)", 1)
    assert d.send(RETAILER, "createOrder(string,uint256)", "Nuts", 10).status == 1

    d.reverts_with("NotDistributor(address)", OTHER_DISTRIBUTOR, "acceptOrder(uint256)", 1)
    d.reverts_with("NotDistributor(address)", RETAILER, "acceptOrder(uint256)", 1)
    status = d.reverts_with(
        "WrongStatus(uint256,uint8)", DISTRIBUTOR, "assignVendor(uint256,address)", 1, VENDOR.address
    )
    assert abi_decode(["uint256", "uint8"], status) == (1, CREATED)
    assert d.send(DISTRIBUTOR, "acceptOrder(uint256)", 1).status == 1
    d.reverts_with("WrongStatus(uint256,uint8)", DISTRIBUTOR, "acceptOrder(uint256)", 1)
    d.reverts_with("NotDistributor(address)", RETAILER, "assignVendor(uint256,address)", 1, VENDOR.address)
    for bad in (RETAILER.address, DISTRIBUTOR.address, "0x" + "00" * 20):
        d.reverts_with("InvalidAddress(address)", DISTRIBUTOR, "assignVendor(uint256,address)", 1, bad)
    assert d.send(DISTRIBUTOR, "assignVendor(uint256,address)", 1, VENDOR.address).status == 1
    d.reverts_with(
        "WrongStatus(uint256,uint8)", DISTRIBUTOR, "assignVendor(uint256,address)", 1, AUDITOR.address
    )
    with pytest.raises(ExecutionReverted) as raised:
        d.call("getOrder(uint256)", 2)
    assert raised.value.data[:4] == _selector("NoSuchOrder(uint256)")


@pytest.mark.parametrize("distributor", [RETAILER.address, "0x" + "00" * 20])
def test_the_distributor_is_neither_the_retailer_nor_nobody(distributor: str) -> None:
    chain = funded_chain()
    code = bytes.fromhex(ARTIFACT["bytecode"][2:]) + abi_encode(["address"], [distributor])
    (created,) = chain.build([decoded(RETAILER, nonce=0, to=None, data=code, gas=3_000_000)]).transactions
    assert created.status == 0


def test_deployed_confidentially_the_vendor_becomes_a_party_by_the_contracts_rule() -> None:
    d = Deployment(private=True)
    retailer, distributor = address_of(RETAILER), address_of(DISTRIBUTOR)

    def sees(account: Any) -> bool:
        state = state_at(d.chain.head, d.chain.params, d.chain.cache)
        state.visibility = Visibility(actor=address_of(account))
        return state.get_code(d.address) != b""

    created = d.send(RETAILER, "createOrder(string,uint256)", "Confidential widgets", 7)
    assert created.status == 1 and created.private_for == () and created.reached == (d.address,)
    accepted = d.send(DISTRIBUTOR, "acceptOrder(uint256)", 1)
    assert accepted.status == 1 and accepted.reached == (d.address,)
    assert sees(RETAILER) and sees(DISTRIBUTOR)
    assert not sees(OTHER_DISTRIBUTOR) and not sees(VENDOR)

    # Another distributor's transaction reaches an empty account: nothing runs, nothing changes.
    meddling = d.send(OTHER_DISTRIBUTOR, "acceptOrder(uint256)", 1)
    assert meddling.private_for is None and not meddling.logs and meddling.reached == ()
    anonymous = d.call("orderCount()")
    assert anonymous.output == b"", "to an anonymous reader the contract is an empty account"
    as_distributor = Reader(address=distributor)
    assert d.order(1, reader=as_distributor)[5] == ACCEPTED
    assert d.call("orderCount()", reader=Reader(address=address_of(VENDOR))).output == b""

    assigned = d.send(DISTRIBUTOR, "assignVendor(uint256,address)", 1, VENDOR.address)
    assert assigned.status == 1 and assigned.logs
    assert sees(VENDOR), "isParty now names the vendor"
    assert not sees(OTHER_DISTRIBUTOR) and not sees(AUDITOR)
    order = d.order(1, reader=Reader(address=address_of(VENDOR)))
    assert order[2] == VENDOR.address.lower() and order[3] == "Confidential widgets"
    assert d.order(1, reader=Reader(address=retailer))[5] == VENDOR_ASSIGNED
