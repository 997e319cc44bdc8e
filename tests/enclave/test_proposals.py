"""Proposals and forwarded transactions: sealed with the ledger secret, opened only by it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enclave.identity import NodeIdentity
from enclave.proposals import (
    MalformedProposal,
    decode_proposal,
    encode_proposal,
    forwardable,
    open_forwarded,
)
from enclave.sealing import LedgerSecrets
from evm_runtime.exceptions import InvalidRequest
from evm_runtime.types import Address
from ledger.signing import recover_validator, validator_digest
from tests.evm_runtime.chainkit import ACCOUNTS, CHAIN_ID, address_of, decoded

SECRETS = LedgerSecrets.create()
COINBASE = Address(b"\x0c" * 20)
PARTY = address_of(ACCOUNTS[3])


def batch(count: int, confidential: frozenset[int] = frozenset()) -> list:
    return [
        replace(decoded(ACCOUNTS[i % 3], nonce=i), private_for=(PARTY,) if i in confidential else None)
        for i in range(count)
    ]


@given(st.integers(0, 6), st.sets(st.integers(0, 5)), st.integers(1, 2**40))
def test_a_proposal_opens_to_what_was_proposed(count: int, confidential: set[int], timestamp: int) -> None:
    proposed = batch(count, frozenset(confidential))
    opened = decode_proposal(SECRETS, encode_proposal(SECRETS, timestamp, COINBASE, proposed), CHAIN_ID)
    assert (opened.timestamp, opened.coinbase) == (timestamp, COINBASE)
    assert [(tx.raw, tx.private_for) for tx in opened.batch] == [(tx.raw, tx.private_for) for tx in proposed]


@given(st.binary(min_size=1, max_size=200))
def test_a_record_block_proposal_carries_its_record_and_no_transaction(record: bytes) -> None:
    opened = decode_proposal(SECRETS, encode_proposal(SECRETS, 7, COINBASE, (), record), CHAIN_ID)
    assert (opened.record, opened.batch) == (record, ())
    assert decode_proposal(SECRETS, encode_proposal(SECRETS, 7, COINBASE, batch(1)), CHAIN_ID).record == b""
    with pytest.raises(MalformedProposal):  # a record with transactions
        decode_proposal(SECRETS, encode_proposal(SECRETS, 7, COINBASE, batch(1), record), CHAIN_ID)


def test_a_proposal_shows_no_transaction_and_opens_only_with_the_secret() -> None:
    proposed = batch(2, frozenset({1}))
    payload = encode_proposal(SECRETS, 1_000, COINBASE, proposed)
    assert all(tx.raw not in payload for tx in proposed)
    with pytest.raises(MalformedProposal):
        decode_proposal(LedgerSecrets.create(), payload, CHAIN_ID)
    with pytest.raises(MalformedProposal):
        decode_proposal(SECRETS, payload[:-1] + bytes([payload[-1] ^ 1]), CHAIN_ID)
    with pytest.raises(MalformedProposal):
        decode_proposal(SECRETS, b"\xc0", CHAIN_ID)


def test_a_confidential_transaction_is_forwarded_sealed() -> None:
    public, confidential = batch(2, frozenset({1}))
    assert forwardable(SECRETS, public) == public.raw
    sealed = forwardable(SECRETS, confidential)
    assert confidential.raw not in sealed
    opened = open_forwarded(SECRETS, sealed, CHAIN_ID)
    assert (opened.raw, opened.private_for) == (confidential.raw, (PARTY,))
    assert open_forwarded(SECRETS, public.raw, CHAIN_ID).private_for is None
    with pytest.raises(InvalidRequest):
        open_forwarded(LedgerSecrets.create(), sealed, CHAIN_ID)


def test_a_validator_signature_is_never_over_the_bare_hash() -> None:
    identity = NodeIdentity.create()
    digest = bytes(range(32))
    signature = identity.sign_as_validator(digest)
    assert recover_validator(digest, signature) == identity.address
    assert signature != identity.sign_hash(digest)
    assert identity.sign_hash(validator_digest(digest)) == signature
