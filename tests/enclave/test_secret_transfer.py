"""Ledger secrets travel from one validator's enclave to another's, and to no one else."""

from __future__ import annotations

from pathlib import Path

import pytest

import enclave  # noqa: F401 - installs the governance contract
from enclave.identity import NodeIdentity
from enclave.local import InProcessEnclave
from enclave.sealing import LedgerSecrets, UnsealError
from enclave.secret_transfer import transfer_report_data, unwrap_secrets, wrap_secrets
from evm_runtime.chain import ChainParams
from evm_runtime.exceptions import InvalidRequest, NotPermitted
from governance.codec import encode_state
from governance.state import GovernanceState, Member, Validator
from ledger.database import make_engine
from ledger.store import LedgerStore
from migrations import upgrade_to_head

PARAMS = ChainParams(chain_id=4242)


def _enclave(directory: Path, name: str, store_of: str | None = None) -> InProcessEnclave:
    engine = make_engine(f"sqlite:///{directory / f'{store_of or name}.sqlite'}")
    upgrade_to_head(engine)
    return InProcessEnclave(LedgerStore(engine), PARAMS, keys_dir=directory / f"{name}-keys")


def _start(giver: InProcessEnclave, validators: list[InProcessEnclave], *others: InProcessEnclave) -> None:
    """Genesis on `giver`'s ledger, governed with `validators` as its validators; the
    platforms of `others` are trusted too (their code is the approved one)."""
    keys = [validator.node_keys() for validator in validators]
    roots = {key.attestation_root for key in keys} | {other.node_keys().attestation_root for other in others}
    state = GovernanceState(
        members={keys[0].address: Member("m")},
        validators={key.address: Validator(f"node-{i}", giver.measurement) for i, key in enumerate(keys)},
        measurements=frozenset({giver.measurement}),
        attestation_roots=frozenset(roots),
    )
    genesis = giver.create_genesis({}, 1_000, encode_state(state))
    giver._store.append_block(genesis, settings={"chain_id": str(PARAMS.chain_id)})
    giver.committed(genesis)


def test_a_validator_takes_the_networks_secrets_and_then_reads_its_ledger(tmp_path: Path) -> None:
    giver, joiner = _enclave(tmp_path, "giver"), _enclave(tmp_path, "joiner")
    _start(giver, [giver, joiner])
    wrapped = giver.share_ledger_secrets(joiner.quote(transfer_report_data(PARAMS.chain_id)))
    joiner.adopt_ledger_secrets(wrapped)
    # The joiner's enclave, restarted on the giver's ledger, opens its sealed state.
    reader = _enclave(tmp_path, "joiner", store_of="giver")
    assert reader.network_config() == giver.network_config() is not None


def test_only_validators_with_a_quote_for_this_purpose_get_them(tmp_path: Path) -> None:
    giver, joiner, stranger = (_enclave(tmp_path, name) for name in ("giver", "joiner", "stranger"))
    _start(giver, [giver, joiner], stranger)
    purpose = transfer_report_data(PARAMS.chain_id)
    with pytest.raises(NotPermitted, match="not a validator"):
        giver.share_ledger_secrets(stranger.quote(purpose))
    with pytest.raises(NotPermitted, match="attestation root"):
        giver.share_ledger_secrets(_enclave(tmp_path, "foreign").quote(purpose))
    with pytest.raises(NotPermitted, match="report data"):
        giver.share_ledger_secrets(joiner.quote(b"something else"))
    with pytest.raises(NotPermitted, match="report data"):
        giver.share_ledger_secrets(joiner.quote(transfer_report_data(PARAMS.chain_id + 1)))
    tampered = bytearray(joiner.quote(purpose))
    tampered[10] ^= 1
    with pytest.raises(NotPermitted):
        giver.share_ledger_secrets(bytes(tampered))


def test_the_answer_opens_only_in_the_enclave_it_was_made_for(tmp_path: Path) -> None:
    giver, joiner, stranger = (_enclave(tmp_path, name) for name in ("giver", "joiner", "stranger"))
    _start(giver, [giver, joiner])
    wrapped = giver.share_ledger_secrets(joiner.quote(transfer_report_data(PARAMS.chain_id)))
    with pytest.raises(InvalidRequest, match="not wrapped for this node"):
        stranger.adopt_ledger_secrets(wrapped)
    with pytest.raises(InvalidRequest, match="before it stores anything"):
        giver.adopt_ledger_secrets(wrapped)


def test_wrapping_is_bound_to_the_recipient_and_the_chain() -> None:
    secrets, recipient, other = LedgerSecrets.create().rotated(), NodeIdentity.create(), NodeIdentity.create()
    wrapped = wrap_secrets(secrets, recipient.public_key, 1)
    assert unwrap_secrets(recipient, wrapped, 1).export() == secrets.export()
    for identity, chain_id in ((other, 1), (recipient, 2)):
        with pytest.raises(UnsealError):
            unwrap_secrets(identity, wrapped, chain_id)
    for position in (0, 5, 40, len(wrapped) - 1):
        changed = bytearray(wrapped)
        changed[position] ^= 1
        with pytest.raises(UnsealError):
            unwrap_secrets(recipient, bytes(changed), 1)
