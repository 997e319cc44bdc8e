"""Reopening a recovered network (`governance.reopening`): the rules, and the encodings."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from evm_runtime.types import Address, Hash32
from governance.actions import ActionEnvironment, AttestedNode
from governance.exceptions import InvalidAction
from governance.reopening import (
    REOPENING_MAGIC,
    ApprovedReopening,
    NewValidator,
    Reopening,
    TooFewApprovals,
    approver,
    reopen,
    sign_approval,
)
from governance.state import GovernanceState, Member, NetworkConfig, Validator

KEYS = [bytes([n]) * 32 for n in range(1, 6)]
A, B, C, OUTSIDER, _ = (Address(bytes.fromhex(Account.from_key(key).address[2:])) for key in KEYS)
CHAIN_ID = 4242
PARENT = (7, Hash32(b"\x77" * 32))
MEASUREMENT = b"\x42" * 32
NEW = Address(b"\x99" * 20)
LOST = Address(b"\x11" * 20)
T0 = 1_700_000_000


def verify_quote(
    quote: bytes, roots: frozenset[bytes], measurements: frozenset[bytes], now: int
) -> AttestedNode:
    """A stand-in for the enclave's check: b"quote:" and the node's address is a good quote."""
    if not quote.startswith(b"quote:"):
        raise InvalidAction("the quote does not verify")
    return AttestedNode(Address(quote[6:26]), MEASUREMENT)


ENV = ActionEnvironment(now=T0, verify_quote=verify_quote)


def consortium(threshold: int = 0) -> GovernanceState:
    return GovernanceState(
        members={member: Member(f"member {i}") for i, member in enumerate((A, B, C))},
        validators={LOST: Validator("10.0.0.1:8645", MEASUREMENT)},
        measurements=frozenset({MEASUREMENT}),
        config=NetworkConfig(recovery_threshold=threshold),
    )


def proposal(*validators: Address, parent: tuple[int, Hash32] = PARENT) -> Reopening:
    named = tuple(NewValidator(b"quote:" + bytes(v), f"10.0.0.{i}:8645") for i, v in enumerate(validators))
    return Reopening(CHAIN_ID, parent[0], parent[1], named or (NewValidator(b"quote:" + bytes(NEW), "n:1"),))


def approved(reopening: Reopening, *keys: bytes) -> ApprovedReopening:
    return ApprovedReopening(reopening, tuple(sign_approval(reopening, key) for key in keys))


def test_a_majority_of_the_members_replaces_the_lost_validators() -> None:
    reopening = proposal(NEW)
    state = reopen(consortium(), approved(reopening, KEYS[0], KEYS[2]), PARENT, CHAIN_ID, ENV)
    assert dict(state.validators) == {NEW: Validator("10.0.0.0:8645", MEASUREMENT)}
    assert state.members == consortium().members


def test_fewer_approvals_than_the_threshold_reopen_nothing() -> None:
    reopening = proposal(NEW)
    with pytest.raises(TooFewApprovals, match="1 of the 2"):
        reopen(consortium(), approved(reopening, KEYS[0]), PARENT, CHAIN_ID, ENV)
    with pytest.raises(TooFewApprovals, match="1 of the 2"):  # one member approving twice counts once
        reopen(consortium(), approved(reopening, KEYS[0], KEYS[0]), PARENT, CHAIN_ID, ENV)
    with pytest.raises(TooFewApprovals, match="2 of the 3"):  # the configured threshold
        reopen(consortium(threshold=3), approved(reopening, KEYS[0], KEYS[1]), PARENT, CHAIN_ID, ENV)


def test_only_members_approve_and_signatures_must_verify() -> None:
    reopening = proposal(NEW)
    with pytest.raises(InvalidAction, match="not a member"):
        reopen(consortium(), approved(reopening, KEYS[0], KEYS[3]), PARENT, CHAIN_ID, ENV)
    forged = ApprovedReopening(reopening, (sign_approval(reopening, KEYS[0]), b"\x01" * 65))
    with pytest.raises(InvalidAction):
        reopen(consortium(), forged, PARENT, CHAIN_ID, ENV)
    with pytest.raises(InvalidAction, match="does not verify"):
        approver(reopening, b"\x00" * 64)
    other = proposal(NEW, parent=(8, Hash32(b"\x88" * 32)))
    assert approver(reopening, sign_approval(other, KEYS[1])) != B  # approvals are of one reopening


def test_a_reopening_holds_for_its_chain_and_parent_only() -> None:
    reopening = proposal(NEW)
    signed = approved(reopening, KEYS[0], KEYS[1])
    with pytest.raises(InvalidAction, match="is for chain 4242, not 4243"):
        reopen(consortium(), signed, PARENT, CHAIN_ID + 1, ENV)
    with pytest.raises(InvalidAction, match="approve the current one"):
        reopen(consortium(), signed, (8, PARENT[1]), CHAIN_ID, ENV)


def test_every_new_validator_is_attested_and_named_once() -> None:
    bad = Reopening(CHAIN_ID, *PARENT, (NewValidator(b"forged", "n:1"),))
    with pytest.raises(InvalidAction, match="quote does not verify"):
        reopen(consortium(), approved(bad, KEYS[0], KEYS[1]), PARENT, CHAIN_ID, ENV)
    twice = proposal(NEW, NEW)
    with pytest.raises(InvalidAction, match="twice"):
        reopen(consortium(), approved(twice, KEYS[0], KEYS[1]), PARENT, CHAIN_ID, ENV)
    empty = Reopening(CHAIN_ID, *PARENT, ())
    with pytest.raises(InvalidAction, match="at least one validator"):
        reopen(consortium(), approved(empty, KEYS[0], KEYS[1]), PARENT, CHAIN_ID, ENV)


validators = st.lists(
    st.builds(NewValidator, st.binary(min_size=1, max_size=300), st.text(max_size=40)), max_size=4
)
reopenings = st.builds(
    Reopening,
    st.integers(0, 2**64),
    st.integers(0, 2**64),
    st.binary(min_size=32, max_size=32).map(Hash32),
    validators.map(tuple),
)


@given(reopenings, st.lists(st.binary(min_size=65, max_size=65), max_size=5))
def test_reopenings_and_their_records_round_trip(reopening: Reopening, approvals: list[bytes]) -> None:
    assert Reopening.decode(reopening.encode()) == reopening
    record = ApprovedReopening(reopening, tuple(approvals)).encode()
    assert record.startswith(REOPENING_MAGIC)
    assert ApprovedReopening.decode(record) == ApprovedReopening(reopening, tuple(approvals))


@given(reopenings, st.binary(max_size=8))
def test_anything_else_is_not_a_reopening(reopening: Reopening, junk: bytes) -> None:
    record = ApprovedReopening(reopening, ()).encode()
    for bad in (record + b"\x00", record[len(REOPENING_MAGIC) :], b"conclave dev state patch v1\x00" + junk):
        with pytest.raises(InvalidAction):
            ApprovedReopening.decode(bad)
    with pytest.raises(InvalidAction):
        Reopening.decode(reopening.encode() + b"\x00")
