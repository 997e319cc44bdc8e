"""The visibility ACL: who may see a confidential transaction, and a waiting one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from enclave.acl import may_see_pending, may_see_transaction
from evm_runtime.types import Address, ExecutedTransaction, Hash32

SENDER, NAMED, PARTY, OUTSIDER = (Address(bytes([n]) * 20) for n in (1, 2, 3, 4))
CONTRACT = Address(b"\xcc" * 20)


def _record(
    private_for: tuple[Address, ...] = (NAMED,), reached: tuple[Address, ...] = (CONTRACT,)
) -> ExecutedTransaction:
    return ExecutedTransaction(
        hash=Hash32(b"\x01" * 32),
        raw=b"\x02",
        sender=SENDER,
        to=CONTRACT,
        nonce=0,
        index=0,
        tx_type=2,
        status=1,
        gas_used=1,
        cumulative_gas_used=1,
        effective_gas_price=1,
        contract_address=None,
        logs=(),
        logs_bloom=bytes(256),
        receipt_rlp=b"",
        private_for=private_for,
        reached=reached,
    )


def _parties_of(contract: Address) -> bool:
    return False


def test_the_sender_the_named_and_the_contracts_parties_see_it() -> None:
    record = _record()
    party = lambda contract: contract == CONTRACT  # noqa: E731 - the contract's parties include the viewer
    assert may_see_transaction(SENDER, record, _parties_of)
    assert may_see_transaction(NAMED, record, _parties_of)
    assert may_see_transaction(PARTY, record, party)
    assert not may_see_transaction(OUTSIDER, record, _parties_of)
    assert not may_see_transaction(None, record, party), "anonymous readers see nothing confidential"


@given(st.lists(st.binary(min_size=20, max_size=20), max_size=6), st.binary(min_size=20, max_size=20))
def test_no_one_outside_sender_named_and_parties_sees_it(named: list[bytes], viewer: bytes) -> None:
    record = _record(tuple(Address(a) for a in named), reached=())
    expected = viewer == SENDER or viewer in named
    assert may_see_transaction(Address(viewer), record, lambda contract: True) is expected


def test_waiting_transactions_are_seen_by_their_audience() -> None:
    assert may_see_pending(None, None) and may_see_pending(OUTSIDER, None), "public ones by everyone"
    audience = frozenset({SENDER, NAMED})
    assert may_see_pending(NAMED, audience)
    assert not may_see_pending(OUTSIDER, audience) and not may_see_pending(None, audience)
