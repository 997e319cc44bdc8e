"""Admissions gathered into one enclave call (`enclave admit_many`, `gateway.admissions`)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence

import pytest

from enclave.interface import Admitted, Submission
from evm_runtime.exceptions import (
    AlreadyKnown,
    ConclaveError,
    InvalidRequest,
    LimitExceeded,
    NonceTooLow,
    TransactionRejected,
    Unauthenticated,
)
from gateway.admissions import AdmissionQueue, Outcome
from gateway.jsonrpc import handle_body, handle_body_later
from gateway.node import Node
from tests.evm_runtime.chainkit import ACCOUNTS, address_of, sign
from tests.gateway.inprocess import ALICE, BOB, body, request
from tests.support.sign_in import enclave_token


def test_admit_many_answers_each_submission_with_its_admission_or_its_error(node: Node) -> None:
    carol = ACCOUNTS[2]
    token = enclave_token(node.enclave, carol)
    first, second = sign(ALICE, nonce=0), sign(ALICE, nonce=1)
    confidential = sign(carol, nonce=0)
    outcomes = node.enclave.admit_many(
        [
            Submission(first),
            Submission(b"\x02not a transaction"),
            Submission(confidential, (address_of(BOB),), None),  # not signed in as its sender
            Submission(second),
            Submission(confidential, (address_of(BOB),), token),
            Submission(sign(BOB, nonce=0, maxFeePerGas=1)),  # below the base fee
        ]
    )
    assert [type(outcome) for outcome in outcomes][0] is Admitted
    admitted, malformed, anonymous, following, private, cheap = outcomes
    assert isinstance(admitted, Admitted) and admitted.transaction.raw == first
    assert isinstance(malformed, ConclaveError)
    assert isinstance(anonymous, Unauthenticated)
    assert isinstance(following, Admitted) and following.transaction.nonce == 1
    assert isinstance(private, Admitted) and private.audience is not None
    assert private.transaction.private_for == (address_of(BOB),)
    assert isinstance(cheap, TransactionRejected)


def test_admit_many_fails_whole_on_an_error_that_is_not_a_domain_error(node: Node) -> None:
    with pytest.raises(AttributeError):
        node.enclave.admit_many([Submission(sign(ALICE)), "not a submission"])  # type: ignore[list-item]


class _Gated:
    """`admit_many` that holds its first call until released, recording each call's size."""

    def __init__(self, admit_many: object) -> None:
        self._admit_many = admit_many
        self.sizes: list[int] = []
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, submissions: Sequence[Submission]) -> Sequence[Outcome]:
        self.sizes.append(len(submissions))
        if len(self.sizes) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        return self._admit_many(submissions)  # type: ignore[operator]


def test_submissions_that_arrive_during_a_call_go_together_in_the_next(node: Node) -> None:
    gated = _Gated(node.enclave.admit_many)
    queue: AdmissionQueue[bytes] = AdmissionQueue(gated, node._settle_admissions, lambda: node._head_changes)
    carol = ACCOUNTS[2]
    token = enclave_token(node.enclave, carol)
    alice = [sign(ALICE, nonce=nonce) for nonce in range(4)]
    private = sign(carol, nonce=0)

    async def send_all() -> list[bytes | BaseException]:
        first = asyncio.create_task(queue.admit(Submission(alice[0])))
        await asyncio.to_thread(gated.first_started.wait, 10)
        later = [
            queue.admit(Submission(alice[1])),
            queue.admit(Submission(b"\x02junk")),
            queue.admit(Submission(alice[2])),
            queue.admit(Submission(alice[2])),  # the same again: the pool knows it already
            queue.admit(Submission(private, (address_of(BOB),), None)),
            queue.admit(Submission(private, (address_of(BOB),), token)),
            queue.admit(Submission(alice[3])),
        ]
        tasks = [asyncio.create_task(coroutine) for coroutine in later]
        await asyncio.sleep(0.05)  # all of them wait for the first call
        gated.release.set()
        return await asyncio.gather(first, *tasks, return_exceptions=True)

    answers = asyncio.run(send_all())
    assert gated.sizes == [1, 7]
    assert queue.calls == 2
    ok0, ok1, junk, ok2, again, anonymous, confidential, ok3 = answers
    assert [node.pool.get(answer).raw for answer in (ok0, ok1, ok2, ok3)] == alice  # type: ignore[arg-type,union-attr]
    assert isinstance(junk, ConclaveError)
    assert isinstance(again, AlreadyKnown)
    assert isinstance(anonymous, Unauthenticated)
    assert isinstance(confidential, bytes) and confidential in node._pending_audiences
    block = node.ordering.seal()
    assert [tx.hash for tx in block.transactions if tx.sender == address_of(ALICE)] == [ok0, ok1, ok2, ok3]


def test_an_error_of_the_call_itself_reaches_every_caller_of_that_call() -> None:
    def lost(submissions: Sequence[Submission]) -> Sequence[Outcome]:
        raise InvalidRequest("the enclave is gone")

    queue: AdmissionQueue[bytes] = AdmissionQueue(lost, lambda outcomes, epoch: [])

    async def send_two() -> list[bytes | BaseException]:
        return await asyncio.gather(
            queue.admit(Submission(b"a")), queue.admit(Submission(b"b")), return_exceptions=True
        )

    assert [type(answer) for answer in asyncio.run(send_two())] == [InvalidRequest, InvalidRequest]


def test_submissions_past_the_limit_are_refused_at_once(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.admissions.MAX_WAITING", 2)
    gated = _Gated(node.enclave.admit_many)
    queue: AdmissionQueue[bytes] = AdmissionQueue(gated, node._settle_admissions)

    async def flood() -> list[bytes | BaseException]:
        first = asyncio.create_task(queue.admit(Submission(sign(ALICE, nonce=0))))
        await asyncio.to_thread(gated.first_started.wait, 10)
        waiting = [asyncio.create_task(queue.admit(Submission(sign(ALICE, nonce=n)))) for n in (1, 2)]
        await asyncio.sleep(0)
        with pytest.raises(LimitExceeded, match="waiting for admission"):
            await queue.admit(Submission(sign(ALICE, nonce=3)))
        gated.release.set()
        return await asyncio.gather(first, *waiting, return_exceptions=True)

    assert all(isinstance(answer, bytes) for answer in asyncio.run(flood()))


def test_a_transaction_a_block_made_stale_during_the_call_leaves_the_pool(node: Node) -> None:
    """Its nonce was checked before the block: the block used it, so it may not wait, and
    its caller hears what an admission after the block would have said."""
    raw = sign(ALICE, nonce=0)
    node.send_raw_transaction(raw)
    admitted = node.enclave.admit_many([Submission(raw)])  # nonce 0 still free at this head
    epoch = node._head_changes
    node.ordering.seal()  # the block takes the pooled transaction meanwhile
    (answer,) = node._settle_admissions(admitted, epoch)
    assert isinstance(answer, NonceTooLow)
    assert node.pool.get(admitted[0].transaction.hash) is None  # type: ignore[union-attr]
    assert node.enclave.account_nonce(address_of(ALICE)) == 1
    with pytest.raises(NonceTooLow):
        node.send_raw_transaction(raw)


@pytest.mark.parametrize("queued", [False, True])
def test_the_event_loop_form_of_a_body_answers_as_the_plain_one(node: Node, queued: bool) -> None:
    """`handle_body_later` (HTTP) awaits eth_sendRawTransaction's form on the loop (through
    an `AdmissionQueue` as with an enclave process, or at once); a batch's requests still
    take effect in order, each answered on its own."""
    if queued:
        node._admissions = AdmissionQueue(node.enclave.admit_many, node._settle_admissions, lambda: 0)
    first, second = sign(ALICE, nonce=0), sign(ALICE, nonce=1)
    batch = [
        request("eth_sendRawTransaction", ["0x" + first.hex()], 1),
        request("eth_getTransactionCount", [ALICE.address, "pending"], 2),
        request("eth_sendRawTransaction", ["0x" + first.hex()], 3),
        request("eth_sendRawTransaction", ["0x" + second.hex()], 4),
        {"jsonrpc": "2.0", "method": "eth_sendRawTransaction", "params": ["0x02"]},  # a notification
        request("no_such_method", [], 5),
    ]
    answer = asyncio.run(handle_body_later(node, body(batch)))
    assert answer is not None
    sent, count, again, following, missing = json.loads(answer)
    assert sent["result"] == "0x" + node.pool.get(bytes.fromhex(sent["result"][2:])).hash.hex()  # type: ignore[union-attr]
    assert count["result"] == "0x1"
    assert "already known" in again["error"]["message"]
    assert following["id"] == 4 and "result" in following
    assert missing["error"]["code"] == -32601
    assert asyncio.run(handle_body_later(node, b"{")) == handle_body(node, b"{")
    assert not queued or node._admissions.calls == 4  # type: ignore[union-attr]
