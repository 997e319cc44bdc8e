"""The canonical encoding of the governance state (`governance.codec`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.codec import CorruptGovernanceState, decode_state, encode_state
from governance.constitution import MAJORITY, TWO_THIRDS, Constitution, Threshold
from governance.state import (
    Action,
    GovernanceState,
    Member,
    NetworkConfig,
    Proposal,
    ProposalState,
    Validator,
)

addresses = st.binary(min_size=20, max_size=20)
text = st.text(max_size=30)
thresholds = st.sampled_from([MAJORITY, TWO_THIRDS, Threshold(3, 4, strict=False), Threshold(0, 1)])
constitutions = st.builds(
    Constitution,
    version=st.integers(1, 1000),
    name=st.text(min_size=1, max_size=40),
    terms_hash=st.binary(min_size=32, max_size=32),
    default_threshold=thresholds,
    thresholds=st.dictionaries(st.sampled_from(["add_user", "add_member", "set_config"]), thresholds),
    vetoes=st.dictionaries(st.sampled_from(["remove_member", "set_constitution"]), st.frozensets(addresses)),
    voting_period=st.integers(60, 10**6),
)
arguments = st.one_of(st.booleans(), st.integers(0, 2**256 - 1), st.binary(max_size=64), text, constitutions)
actions = st.builds(
    Action,
    kind=st.sampled_from(["add_user", "set_config", "set_constitution"]),
    args=st.dictionaries(st.sampled_from(["address", "key", "value", "constitution"]), arguments),
)
proposals = st.builds(
    Proposal,
    id=st.integers(1, 10**6),
    proposer=addresses,
    actions=st.lists(actions, min_size=1, max_size=3).map(tuple),
    created_at=st.integers(0, 2**40),
    closes_at=st.integers(0, 2**40),
    state=st.sampled_from(list(ProposalState)),
    ballots=st.dictionaries(addresses, st.booleans(), max_size=4),
    failure=text,
)
states = st.builds(
    GovernanceState,
    members=st.dictionaries(addresses, st.builds(Member, name=text, metadata=text), min_size=1, max_size=5),
    constitution=constitutions,
    users=st.frozensets(addresses, max_size=5),
    deployers=st.frozensets(addresses, max_size=3),
    validators=st.dictionaries(
        addresses,
        st.builds(Validator, endpoint=text, measurement=st.binary(min_size=32, max_size=32)),
        max_size=3,
    ),
    measurements=st.frozensets(st.binary(min_size=32, max_size=32), max_size=3),
    readers=st.dictionaries(addresses, st.frozensets(addresses, min_size=1, max_size=3), max_size=3),
    config=st.builds(
        NetworkConfig,
        block_gas_limit=st.integers(5_000_000, 10**9),
        min_gas_price=st.integers(0, 10**12),
        free_gas=st.booleans(),
        open_submission=st.booleans(),
    ),
    ledger_secret_version=st.integers(1, 100),
    proposals=st.lists(proposals, max_size=4).map(lambda ps: {p.id: p for p in ps}),
    signature_nonces=st.dictionaries(addresses, st.integers(0, 2**64), max_size=3),
    attestation_roots=st.frozensets(st.binary(min_size=32, max_size=32), max_size=2),
)


@settings(max_examples=200)
@given(states)
def test_the_encoding_round_trips(state: GovernanceState) -> None:
    encoded = encode_state(state)
    assert decode_state(encoded) == state
    assert encode_state(decode_state(encoded)) == encoded


@given(states)
def test_equal_states_encode_alike_whatever_the_insertion_order(state: GovernanceState) -> None:
    reordered = GovernanceState(
        members=dict(reversed(list(state.members.items()))),
        constitution=state.constitution,
        users=state.users,
        deployers=state.deployers,
        validators=dict(reversed(list(state.validators.items()))),
        measurements=state.measurements,
        readers=dict(reversed(list(state.readers.items()))),
        config=state.config,
        ledger_secret_version=state.ledger_secret_version,
        proposals=dict(reversed(list(state.proposals.items()))),
        signature_nonces=dict(reversed(list(state.signature_nonces.items()))),
        attestation_roots=state.attestation_roots,
    )
    assert encode_state(reordered) == encode_state(state)


@pytest.mark.parametrize("damaged", [b"", b"\xc0", b"\x01\x02", b"\xf8\xff" + b"\x00" * 10])
def test_damaged_bytes_are_reported(damaged: bytes) -> None:
    with pytest.raises(CorruptGovernanceState, match="does not decode"):
        decode_state(damaged)
