"""A network whose validators are all lost, reopened by its members (`governance.reopening`,
`gateway.reopening`), in this process over real loopback TCP: the recovered node orders
blocks alone, and a validator the members add afterwards catches up through the reopening
block from it, although the validators its genesis names are gone."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from eth_hash.auto import keccak

from enclave.keystore import open_keystore, with_ledger_secrets
from enclave.proposals import encode_proposal
from enclave.verification import verify_ledger
from evm_runtime.exceptions import NotPermitted
from evm_runtime.types import Hash32
from gateway.caller import acting_as
from gateway.receipts import InvalidReceipt, verify_document
from gateway.reopening import Reopenings
from gateway.rpc.proofs import verifiable_receipt
from governance.exceptions import InvalidAction
from governance.reopening import ApprovedReopening, sign_approval
from ledger.consensus.messages import decode_certificate, verify_certificate
from ledger.database import make_engine
from ledger.receipts import receipt_to_json
from ledger.store import LedgerStore
from tests.evm_runtime.chainkit import ACCOUNTS

from .cluster import CHAIN_ID, Cluster, Governor, agree, eventually, included, run, transfer

LOST, RECOVERED, NEWCOMER = (0, 1), 2, 3


def restore(cluster: Cluster, source: int, target: int) -> None:
    """What disaster recovery leaves: node `target` holds node `source`'s ledger file and the
    ledger secrets (restored from the members' shares, docs/recovery.md), not its keys."""
    for suffix in ("", "-wal", "-shm"):
        copied = cluster.dir(source) / f"ledger.db{suffix}"
        if copied.exists():
            shutil.copy2(copied, cluster.dir(target) / copied.name)
    secrets = open_keystore(cluster.dir(source) / "enclave", cluster.measurement).ledger_secrets
    keys_dir = cluster.dir(target) / "enclave"
    with_ledger_secrets(open_keystore(keys_dir, cluster.measurement), secrets, keys_dir, cluster.measurement)


def test_a_reopened_network_orders_blocks_and_a_new_validator_syncs_through_the_reopening(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cluster = Cluster(tmp_path, 2, spare=2)
        nodes = await cluster.start_all()
        try:
            await agree(nodes, [nodes[0].send_raw_transaction(transfer(0))])
            await cluster.stop_all()  # every validator lost
            restore(cluster, 0, RECOVERED)
            recovered = await cluster.start(RECOVERED)
            lost_head = recovered.head
            assert recovered.ordering.instance is None  # the genesis names the lost validators

            reopenings = Reopenings(recovered)
            reopening = reopenings.current().reopening
            assert (reopening.parent_number, reopening.parent_hash) == (lost_head.number, lost_head.hash)
            outsider = sign_approval(reopening, bytes(ACCOUNTS[3].key))
            with pytest.raises(InvalidAction, match="not a member"):
                reopenings.approve(reopening.encode(), outsider)
            # A peer's reopening block approved by no member is refused when it is checked.
            forged = ApprovedReopening(reopening, (outsider,)).encode()
            secrets = open_keystore(cluster.dir(RECOVERED) / "enclave", cluster.measurement).ledger_secrets
            payload = encode_proposal(secrets, lost_head.timestamp + 1, recovered.address, (), forged)
            verdict = recovered.enclave.validate_proposal(payload, Hash32(b"\x00" * 32))
            assert verdict.result is None and "not a member" in verdict.reason
            done = reopenings.approve(reopening.encode(), sign_approval(reopening, bytes(ACCOUNTS[0].key)))
            assert done.block is not None and done.block.number == lost_head.number + 1
            assert recovered.ordering.validators == (recovered.address,)
            certificate = decode_certificate(recovered.store.certificate(done.block.number) or b"")
            assert verify_certificate(done.block.hash, certificate, (recovered.address,))
            with pytest.raises(NotPermitted, match="network is open"):
                reopenings.current()

            sent = recovered.send_raw_transaction(transfer(1))
            await eventually(lambda: included(recovered, sent), what="a block after the reopening")

            # A validator the members add now joins from the recovered node, the only one
            # it can fetch blocks from, and checks every block on the way, the reopening too.
            await Governor(recovered).enact(
                "add_validator", {"quote": cluster.quote(NEWCOMER), "endpoint": cluster.endpoint(NEWCOMER)}
            )
            joined = await cluster.start(
                NEWCOMER,
                secrets_from=recovered,
                sync_peers={recovered.address: ("127.0.0.1", cluster.ports[RECOVERED])},
            )
            await eventually(lambda: joined.head.number >= recovered.head.number, timeout=30, what="catch-up")
            assert joined.store.block_by_number(done.block.number).hash == done.block.hash  # type: ignore[union-attr]
            await agree([recovered, joined], [joined.send_raw_transaction(transfer(2))])
            assert set(joined.ordering.validators) == {recovered.address, joined.address}
        finally:
            await cluster.stop_all()
        verify(cluster, NEWCOMER)

    run(scenario, timeout=120)


def verify(cluster: Cluster, i: int) -> None:
    """`conclave ledger verify` on node i's ledger: the reopening replays, every certificate holds."""
    engine = make_engine(cluster.config(i).database_url)
    secrets = open_keystore(cluster.dir(i) / "enclave", cluster.measurement).ledger_secrets
    try:
        report = verify_ledger(LedgerStore(engine), CHAIN_ID, secrets)
    finally:
        engine.dispose()
    assert report.ok and report.certified == report.blocks - 1, report.discrepancies


def test_a_receipt_after_the_reopening_verifies_against_the_lost_validators(tmp_path: Path) -> None:
    """A receipt of a transaction after the reopening carries the reopening block with the
    members' approvals, its parent and that parent's certificate, so it verifies offline
    against the genesis validators, whose keys are lost, and against the reopened set."""

    async def scenario() -> None:
        cluster = Cluster(tmp_path, 2, spare=1)
        nodes = await cluster.start_all()
        lost = [node.address for node in nodes]
        try:
            before = nodes[0].send_raw_transaction(transfer(0))
            await agree(nodes, [before])
            await cluster.stop_all()
            restore(cluster, 0, RECOVERED)
            recovered = await cluster.start(RECOVERED)
            assert recovered.address not in lost
            reopenings = Reopenings(recovered)
            reopening = reopenings.current().reopening
            done = reopenings.approve(reopening.encode(), sign_approval(reopening, bytes(ACCOUNTS[0].key)))
            assert done.block is not None
            after = recovered.send_raw_transaction(transfer(1))
            await eventually(lambda: included(recovered, after), what="a block after the reopening")

            with acting_as(None):
                receipt = verifiable_receipt(recovered, after)
                old = verifiable_receipt(recovered, before)
            assert receipt is not None and old is not None
            (change,) = receipt.changes
            assert keccak(change.header) == done.block.hash and change.reopening is not None
            assert old.changes == ()

            document = json.loads(json.dumps(receipt_to_json(receipt)))
            reopened = [recovered.address]
            for trusted, reopenings_followed in ((lost, 1), (reopened, 0)):
                verified = verify_document(document, trusted)
                assert verified.transaction_hash == after and verified.validators == {recovered.address}
                assert (verified.changes_followed, verified.reopenings_followed) == (1, reopenings_followed)
            assert verify_document(receipt_to_json(old), lost).block_number < done.block.number
            with pytest.raises(InvalidReceipt, match="quorum"):  # the old set, without the evidence
                bare = replace(receipt, changes=(replace(change, reopening=None),))
                verify_document(bare, lost)
            record = change.reopening.record
            with pytest.raises(InvalidReceipt, match="extraData"):  # a tampered record
                evidence = replace(change.reopening, record=record[:-1] + bytes([record[-1] ^ 1]))
                verify_document(replace(receipt, changes=(replace(change, reopening=evidence),)), lost)
        finally:
            await cluster.stop_all()

    run(scenario, timeout=120)
