"""Validators join by governance with an attestation quote the enclave verifies at ledger
time (`enclave.attestation.verify_validator_quote`, plugged into governance's
`add_validator`), run in real blocks."""

from __future__ import annotations

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector

import enclave  # noqa: F401 - installs the governance contract with the enclave's verifier
from enclave.attestation import make_quote
from enclave.identity import NodeIdentity
from enclave.platform import AttestationRoot
from evm_runtime.calls import CallContext
from evm_runtime.chain import GenesisAccount
from evm_runtime.system_contracts import genesis_storage
from evm_runtime.transactions import CallRequest
from governance.codec import encode_state
from governance.state import Action, GovernanceState, Member, ProposalState
from governance.system_contract import CODE_MARKER, GOVERNANCE_ADDRESS, encode_action
from tests.evm_runtime.chainkit import ACCOUNTS, ETHER, MemoryChain, address_of, decoded

ALICE = ACCOUNTS[0]
MEASUREMENT = b"\x5e" * 32
ROOT = AttestationRoot.create()
GENESIS_TIME = 1_700_000_000


def chain() -> MemoryChain:
    state = GovernanceState(
        members={address_of(ALICE): Member("Alice")},
        measurements=frozenset({MEASUREMENT}),
        attestation_roots=frozenset({ROOT.public_key}),
    )
    storage, nodes = genesis_storage(encode_state(state))
    alloc = {address_of(ALICE): GenesisAccount(balance=10 * ETHER)}
    alloc[GOVERNANCE_ADDRESS] = GenesisAccount(code=CODE_MARKER, storage=storage)
    return MemoryChain(alloc=alloc, extra_nodes=nodes, genesis_timestamp=GENESIS_TIME)


def quote(
    root: AttestationRoot, identity: NodeIdentity, issued_at: int, measurement: bytes = MEASUREMENT
) -> bytes:
    return make_quote(root.new_platform(), measurement, identity.public_key, b"", issued_at).encode()


def enact(chain: MemoryChain, raw_quote: bytes) -> ProposalState:
    """Alice proposes the validator and votes for it; the proposal's state."""
    nonce = len(chain.hashes) - 1
    add = encode_action(Action("add_validator", {"quote": raw_quote, "endpoint": "https://node-2:8545"}))
    propose = function_signature_to_4byte_selector("propose((string,bytes)[])") + abi_encode(
        ["(string,bytes)[]"], [[add]]
    )
    chain.build([decoded(ALICE, nonce=nonce, to=GOVERNANCE_ADDRESS, data=propose, gas=2_000_000)])
    count = (
        CallContext(chain.head, chain.params, chain.cache)
        .call(
            CallRequest(
                sender=address_of(ALICE),
                to=GOVERNANCE_ADDRESS,
                gas=100_000,
                data=function_signature_to_4byte_selector("proposalCount()"),
            )
        )
        .output
    )
    (pid,) = abi_decode(["uint256"], count)
    vote = function_signature_to_4byte_selector("vote(uint256,bool)") + abi_encode(
        ["uint256", "bool"], [pid, True]
    )
    chain.build([decoded(ALICE, nonce=nonce + 1, to=GOVERNANCE_ADDRESS, data=vote, gas=2_000_000)])
    output = (
        CallContext(chain.head, chain.params, chain.cache)
        .call(
            CallRequest(
                sender=address_of(ALICE),
                to=GOVERNANCE_ADDRESS,
                gas=100_000,
                data=function_signature_to_4byte_selector("proposal(uint256)")
                + abi_encode(["uint256"], [pid]),
            )
        )
        .output
    )
    state = abi_decode(["address", "uint8", "uint64", "uint64", "uint256", "uint256", "string"], output)[1]
    return list(ProposalState)[state]


def test_a_validator_with_a_fresh_quote_of_approved_code_joins() -> None:
    joining = NodeIdentity.create()
    assert enact(chain(), quote(ROOT, joining, GENESIS_TIME + 12)) is ProposalState.ACCEPTED


def test_quotes_from_another_root_of_other_code_or_stale_are_refused() -> None:
    joining = NodeIdentity.create()
    assert enact(chain(), quote(AttestationRoot.create(), joining, GENESIS_TIME)) is ProposalState.FAILED
    assert (
        enact(chain(), quote(ROOT, joining, GENESIS_TIME, measurement=b"\x66" * 32)) is ProposalState.FAILED
    )
    assert enact(chain(), quote(ROOT, joining, GENESIS_TIME - 10 * 3600)) is ProposalState.FAILED
    assert enact(chain(), b"not a quote") is ProposalState.FAILED
