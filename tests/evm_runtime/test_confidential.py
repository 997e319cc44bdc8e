"""Confidential contracts in execution: who reaches them, what outsiders see, the bloom."""

from __future__ import annotations

import dataclasses

from eth._utils.address import generate_contract_address
from eth_abi import encode as abi_encode

from evm_runtime.calls import state_at
from evm_runtime.confidential import PARTIES_ADDRESS, Visibility, creation_parties
from evm_runtime.types import Address
from tests.support.artifacts import load_artifact

from .chainkit import ACCOUNTS, ETHER, address_of, calldata, decoded, funded_chain

OWNER, GUEST, OUTSIDER, LATECOMER = ACCOUNTS[:4]
VAULT = load_artifact("Vault")
RELAY = load_artifact("Relay")


def _deploy(account, nonce, artifact, args=b"", gas=3_000_000):
    code = bytes.fromhex(artifact["bytecode"][2:]) + args
    return decoded(account, nonce=nonce, to=None, data=code, gas=gas)


def _private(item, *parties):
    return dataclasses.replace(item, private_for=tuple(address_of(p) for p in parties))


def _note_slot_value(chain, vault):
    return state_at(chain.head, chain.params, chain.cache).get_storage(vault, 0)


def _vault_chain():
    """A chain with a vault confidential to OWNER and GUEST, and a public relay."""
    chain = funded_chain()
    deploy = _private(_deploy(OWNER, 0, VAULT, abi_encode(["string"], ["secret terms"])), GUEST)
    relay = _deploy(OUTSIDER, 0, RELAY)
    built = chain.build([deploy, relay])
    vault = Address(generate_contract_address(address_of(OWNER), 0))
    relay_address = Address(generate_contract_address(address_of(OUTSIDER), 0))
    return chain, built, vault, relay_address


def test_a_confidential_creation_registers_its_parties_and_is_confidential_itself():
    chain, built, vault, _ = _vault_chain()
    created, public = built.transactions
    assert created.status == 1 and created.private_for == (address_of(GUEST),)
    assert created.reached == (vault,)
    assert public.private_for is None and public.reached == ()
    state = state_at(chain.head, chain.params, chain.cache)
    assert set(creation_parties(state, vault)) == {address_of(OWNER), address_of(GUEST)}
    assert state.get_nonce(PARTIES_ADDRESS) == 1


def test_a_party_sending_an_ordinary_transaction_makes_it_confidential():
    chain, _, vault, _ = _vault_chain()
    write = decoded(
        GUEST, nonce=0, to=vault, gas=200_000, data=calldata("write(string,bytes32)", "v2", b"t" * 32)
    )
    (executed,) = chain.build([write]).transactions
    assert executed.status == 1 and executed.private_for == () and executed.reached == (vault,)
    assert chain.head.bloom == 0, "confidential logs stay out of the header's bloom"
    assert int.from_bytes(executed.logs_bloom, "big") != 0 and executed.logs


def test_an_outsider_reaches_an_empty_account():
    chain, _, vault, relay = _vault_chain()
    before = _note_slot_value(chain, vault)
    write = calldata("write(string,bytes32)", "overwritten", b"x" * 32)
    direct = decoded(OUTSIDER, nonce=1, to=vault, gas=200_000, data=write)
    through_relay = decoded(
        OUTSIDER, nonce=2, to=relay, gas=300_000, data=calldata("relay(address,bytes)", vault, write)
    )
    built = chain.build([direct, through_relay])
    first, second = built.transactions
    assert first.status == 1 and first.private_for is None and not first.logs, "no code ran"
    assert second.status == 1 and second.reached == ()
    (relayed,) = second.logs
    assert relayed.data[-1] == 1, "the inner call succeeded, as a call to an empty account does"
    assert _note_slot_value(chain, vault) == before


def test_ether_into_a_hidden_contract_fails_and_moves_nothing():
    chain, _, vault, relay = _vault_chain()
    state = state_at(chain.head, chain.params, chain.cache)
    before = state.get_balance(vault), state.get_balance(address_of(OUTSIDER))
    pay = decoded(OUTSIDER, nonce=1, to=vault, gas=50_000, value=ETHER)
    via_relay = decoded(
        OUTSIDER,
        nonce=2,
        to=relay,
        gas=300_000,
        value=ETHER,
        data=calldata("relay(address,bytes)", vault, b""),
    )
    first, second = chain.build([pay, via_relay]).transactions
    assert first.status == 0, "the transaction's own frame fails"
    (relayed,) = second.logs
    assert second.status == 1 and relayed.data[-1] == 0, "the relay's inner call fails; the relay goes on"
    state = state_at(chain.head, chain.params, chain.cache)
    assert state.get_balance(vault) == before[0]
    assert state.get_balance(relay) == ETHER
    spent = first.gas_used * first.effective_gas_price + second.gas_used * second.effective_gas_price
    assert state.get_balance(address_of(OUTSIDER)) == before[1] - spent - ETHER


def test_the_contracts_own_is_party_rule_admits_new_parties():
    chain, _, vault, _ = _vault_chain()
    write = calldata("write(string,bytes32)", "for the latecomer", b"l" * 32)
    refused = decoded(LATECOMER, nonce=0, to=vault, gas=200_000, data=write)
    invite = decoded(
        OWNER, nonce=1, to=vault, gas=100_000, data=calldata("invite(address)", LATECOMER.address)
    )
    admitted = decoded(LATECOMER, nonce=1, to=vault, gas=200_000, data=write)
    first, second, third = chain.build([refused, invite, admitted]).transactions
    assert first.private_for is None and not first.logs
    assert second.private_for == () and second.reached == (vault,)
    assert third.private_for == () and third.reached == (vault,) and third.logs


def test_reads_see_what_their_viewer_may():
    chain, _, vault, _ = _vault_chain()
    state = state_at(chain.head, chain.params, chain.cache)
    code = state.get_code(vault)
    assert code
    for viewer, sees in ((None, False), (address_of(OUTSIDER), False), (address_of(GUEST), True)):
        state.visibility = Visibility(actor=viewer)
        assert (state.get_code(vault) == code) is sees
    state.visibility = Visibility(actor=address_of(OUTSIDER), readers=lambda contract: {address_of(OUTSIDER)})
    assert state.get_code(vault) == code, "an auditor governance granted reads it"
    state.visibility = Visibility(actor=address_of(GUEST))
    assert state.get_code(PARTIES_ADDRESS) == b"" and state.get_balance(PARTIES_ADDRESS) == 0


def test_a_failed_confidential_creation_registers_nothing():
    chain = funded_chain()
    deploy = _private(_deploy(GUEST, 0, RELAY, gas=120_000), LATECOMER)
    (executed,) = chain.build([deploy]).transactions
    created = Address(generate_contract_address(address_of(GUEST), 0))
    state = state_at(chain.head, chain.params, chain.cache)
    assert executed.status == 0 and executed.private_for == (address_of(LATECOMER),)
    assert creation_parties(state, created) == () and executed.reached == ()
