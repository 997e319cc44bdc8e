"""The enclave in a process of its own takes transactions back from the host only as it
settled them (`enclave.messages`): a host cannot make it execute one as from another sender."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from enclave.messages import EnclaveFailure
from enclave.process import EnclaveLaunch, EnclaveProcess
from enclave.sealed_state import STATE_SEALING_FORMAT, STATE_SEALING_SETTING
from evm_runtime.chain import ChainParams, GenesisAccount
from ledger.database import make_engine
from ledger.store import LedgerStore
from migrations import upgrade_to_head
from tests.evm_runtime.chainkit import ACCOUNTS, CHAIN_ID, ETHER, address_of, sign
from tests.support.sign_in import enclave_token

GENESIS_TIME = 1_700_000_000
RETURN_NOTHING = bytes.fromhex("60006000f3")
"""Init code of a contract with no code: PUSH1 0, PUSH1 0, RETURN."""


@pytest.fixture
def apart(tmp_path: Path) -> Iterator[EnclaveProcess]:
    """An enclave process over a fresh ledger of one block, with ACCOUNTS[0] funded."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    store = LedgerStore(engine)
    params = ChainParams(chain_id=CHAIN_ID)
    enclave = EnclaveProcess(EnclaveLaunch(url, params, keys_dir=tmp_path / "enclave"))
    try:
        genesis = enclave.create_genesis(
            {address_of(ACCOUNTS[0]): GenesisAccount(balance=ETHER)}, GENESIS_TIME
        )
        store.append_block(
            genesis,
            settings={
                "chain_id": str(CHAIN_ID),
                "genesis_hash": genesis.hash.hex(),
                STATE_SEALING_SETTING: STATE_SEALING_FORMAT,
            },
        )
        enclave.committed(genesis)
        yield enclave
    finally:
        enclave.close()
        store.close()
        engine.dispose()


def test_a_host_cannot_pass_off_a_transaction_as_another_senders(apart: EnclaveProcess) -> None:
    admitted = apart.admit(sign(ACCOUNTS[0], nonce=0, value=5))
    forged = replace(admitted.transaction, sender=address_of(ACCOUNTS[1]))
    with pytest.raises(EnclaveFailure, match="is not from"):
        apart.execute([forged], GENESIS_TIME + 1)
    result = apart.execute([admitted.transaction], GENESIS_TIME + 1)  # the process serves on
    [executed] = result.block.transactions
    assert (executed.sender, executed.status) == (address_of(ACCOUNTS[0]), 1)


def test_a_host_cannot_change_the_audience_of_a_confidential_transaction(apart: EnclaveProcess) -> None:
    admitted = apart.admit(sign(ACCOUNTS[0], nonce=0, value=5))
    assert admitted.transaction.seal, "what the enclave admits comes with its seal"
    widened = replace(admitted.transaction, private_for=(address_of(ACCOUNTS[2]),))
    with pytest.raises(EnclaveFailure, match="without the enclave's seal"):
        apart.execute([widened], GENESIS_TIME + 1)


def test_seals_outlive_a_restart_of_the_enclave_process(apart: EnclaveProcess) -> None:
    sender, party = ACCOUNTS[0], address_of(ACCOUNTS[1])
    confidential = sign(sender, nonce=0, to=None, gas=100_000, data=RETURN_NOTHING)
    admitted = apart.admit(confidential, [party], enclave_token(apart, sender))
    os.kill(apart.pid, signal.SIGKILL)
    os.waitpid(apart.pid, 0)
    result = apart.execute([admitted.transaction], GENESIS_TIME + 1)  # in a new process
    [executed] = result.block.transactions
    assert executed.sender == address_of(sender)
    assert executed.sealed and not executed.raw, "it executed as confidential: the host holds it sealed"
