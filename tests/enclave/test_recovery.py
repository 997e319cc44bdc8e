"""Disaster recovery (`enclave.recovery`, docs/recovery.md): the ledger secrets wrapped with a
recovery key whose k-of-n Shamir shares are encrypted to the members; re-issued when
governance changes; restored in a new enclave from k members' submissions."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_keys import keys
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.local import InProcessEnclave
from enclave.recovery import (
    RecoveryPolicy,
    RecoverySet,
    RecoveryUnavailable,
    combine_shares,
    issue_recovery_set,
    open_share,
    recovery_policy,
    seal_submission,
    unwrap_ledger_secrets,
)
from enclave.sealing import LedgerSecrets, UnsealError
from evm_runtime.chain import ChainParams, GenesisAccount
from evm_runtime.exceptions import InvalidRequest, NotPermitted
from evm_runtime.types import Address
from gateway.node import Node, NodeConfig
from governance.codec import decode_state, encode_state
from governance.state import GovernanceState, Member, NetworkConfig
from governance.system_contract import GOVERNANCE_ADDRESS, SELECTORS, Refused, recovery_key_of
from ledger.recovery_sets import latest_recovery_set

CHAIN_ID = 1337
MEMBER_KEYS = [bytes([i + 1]) * 32 for i in range(7)]


def address(key: bytes) -> Address:
    return Address(keys.PrivateKey(key).public_key.to_canonical_address())


def public(key: bytes) -> bytes:
    return keys.PrivateKey(key).public_key.to_compressed_bytes()


def policy(n: int, k: int, version: int = 0) -> RecoveryPolicy:
    return RecoveryPolicy(k, {address(key): public(key) for key in MEMBER_KEYS[:n]}, version)


def opened_shares(recovery_set: RecoverySet) -> dict[Address, bytes]:
    by_address = {address(key): key for key in MEMBER_KEYS}
    return {member: open_share(recovery_set, member, by_address[member]) for member in recovery_set.shares}


# -- the scheme ---------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(1, 7))
def test_any_k_of_n_shares_restore_the_ledger_secrets(data: st.DataObject, n: int) -> None:
    k = data.draw(st.integers(1, n), label="k")
    secrets = LedgerSecrets.create().rotated()
    recovery_set = issue_recovery_set(secrets, policy(n, k), CHAIN_ID, block_number=3)
    shares = list(opened_shares(recovery_set).values())
    chosen = data.draw(st.lists(st.sampled_from(range(n)), min_size=k, max_size=n, unique=True))
    restored = unwrap_ledger_secrets(recovery_set, combine_shares([shares[i] for i in chosen]))
    assert restored.export() == secrets.export()


@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(2, 7))
def test_fewer_than_k_shares_reveal_nothing(data: st.DataObject, n: int) -> None:
    k = data.draw(st.integers(2, n), label="k")
    secrets = LedgerSecrets.create()
    recovery_set = issue_recovery_set(secrets, policy(n, k), CHAIN_ID, block_number=0)
    shares = list(opened_shares(recovery_set).values())
    chosen = data.draw(st.lists(st.sampled_from(range(n)), min_size=1, max_size=k - 1, unique=True))
    key = combine_shares([shares[i] for i in chosen])
    with pytest.raises(UnsealError, match="too few"):
        unwrap_ledger_secrets(recovery_set, key)


def test_a_share_opens_only_with_its_members_key_and_the_set_survives_encoding() -> None:
    recovery_set = RecoverySet.from_bytes(
        issue_recovery_set(LedgerSecrets.create(), policy(3, 2), CHAIN_ID, 1).to_bytes()
    )
    alice, bob = address(MEMBER_KEYS[0]), address(MEMBER_KEYS[1])
    assert len(open_share(recovery_set, alice, MEMBER_KEYS[0])) == 33
    with pytest.raises(UnsealError):
        open_share(recovery_set, alice, MEMBER_KEYS[1])
    with pytest.raises(UnsealError, match="holds no share"):
        open_share(recovery_set, address(MEMBER_KEYS[5]), MEMBER_KEYS[5])
    assert bob in recovery_set.shares and recovery_set.is_intact()


def test_a_set_whose_threshold_was_lowered_in_the_database_does_not_open() -> None:
    secrets = LedgerSecrets.create()
    genuine = issue_recovery_set(secrets, policy(3, 2), CHAIN_ID, 1)
    shares = list(opened_shares(genuine).values())
    altered = RecoverySet(**{**{f: getattr(genuine, f) for f in genuine.__slots__}, "threshold": 1})
    assert not altered.is_intact()
    with pytest.raises(UnsealError):
        unwrap_ledger_secrets(altered, combine_shares(shares[:1]))


def test_the_threshold_is_a_majority_of_members_unless_governance_sets_it() -> None:
    members = {
        address(key): Member(f"m{i}", recovery_key=public(key)) for i, key in enumerate(MEMBER_KEYS[:4])
    }
    assert recovery_policy(GovernanceState(members=members), 0).threshold == 3
    configured = GovernanceState(members=members, config=NetworkConfig(recovery_threshold=2))
    assert recovery_policy(configured, 0).threshold == 2
    unregistered = {a: Member(m.name) for a, m in list(members.items())[:2]} | dict(list(members.items())[2:])
    with pytest.raises(RecoveryUnavailable, match="2 of 4 members registered"):
        recovery_policy(GovernanceState(members=unregistered), 0)


def test_recovery_fields_encode_only_when_set() -> None:
    plain = GovernanceState(members={address(MEMBER_KEYS[0]): Member("a")})
    with_key = GovernanceState(
        members={address(MEMBER_KEYS[0]): Member("a", recovery_key=public(MEMBER_KEYS[0]))},
        config=NetworkConfig(recovery_threshold=1),
    )
    assert decode_state(encode_state(plain)) == plain
    assert decode_state(encode_state(with_key)) == with_key
    assert len(encode_state(with_key)) > len(encode_state(plain))


def test_a_member_registers_only_its_own_key() -> None:
    alice = MEMBER_KEYS[0]
    uncompressed = keys.PrivateKey(alice).public_key.to_bytes()
    assert recovery_key_of(address(alice), uncompressed) == public(alice)
    with pytest.raises(Refused, match="not 0x"):
        recovery_key_of(address(alice), public(MEMBER_KEYS[1]))


# -- in a node: issued with governance, restored in a new enclave -------------------------


def _set_recovery_key_tx(key: bytes, nonce: int) -> bytes:
    from eth_abi import encode as abi_encode

    selector = next(s for s, name in SELECTORS.items() if name == "setRecoveryKey")
    tx = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": to_checksum_address(GOVERNANCE_ADDRESS),
        "data": selector + abi_encode(["bytes"], [public(key)]),
        "value": 0,
        "gas": 500_000,
        "maxFeePerGas": 10**11,
        "maxPriorityFeePerGas": 10**9,
    }
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def test_shares_are_reissued_when_members_change_and_restore_a_lost_enclave(tmp_path: Path) -> None:
    alice, bob, carol = MEMBER_KEYS[:3]
    governance = GovernanceState(
        members={
            address(alice): Member("Alice", recovery_key=public(alice)),
            address(bob): Member("Bob", recovery_key=public(bob)),
            address(carol): Member("Carol"),
        }
    )
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    node = Node(
        NodeConfig(
            database_url=url,
            enclave_dir=tmp_path / "enclave",
            genesis_governance=governance,
            genesis_alloc={address(carol): GenesisAccount(balance=10**20)},
        )
    )
    first = latest_recovery_set(node.engine)
    assert first is not None, "issued at genesis: 2 of 3 members hold keys, a majority of 3 is 2"
    assert set(RecoverySet.from_bytes(first[1]).shares) == {address(alice), address(bob)}
    node.ordering.seal(allow_empty=True)
    assert latest_recovery_set(node.engine) == first, "nothing changed: nothing re-issued"

    node.send_raw_transaction(_set_recovery_key_tx(carol, 0))
    node.ordering.seal()
    second = RecoverySet.from_bytes(latest_recovery_set(node.engine)[1])  # type: ignore[index]
    assert set(second.shares) == {address(alice), address(bob), address(carol)}
    assert second.threshold == 2 and second.block_number == node.head.number
    expected_config = node.enclave.network_config()
    node.store.close()
    node.engine.dispose()

    # Every node lost: a new enclave on the same ledger cannot read it...
    from ledger.database import make_engine
    from ledger.store import LedgerStore

    engine = make_engine(url)
    store = LedgerStore(engine)
    lost = InProcessEnclave(store, ChainParams(chain_id=CHAIN_ID), keys_dir=tmp_path / "new-enclave")
    status = lost.recovery_status()
    assert status.sealed and status.threshold == 2 and len(status.holders) == 3
    assert lost.recovery_issue() is None

    def submission(key: bytes) -> tuple[bytes, bytes]:
        share = open_share(second, address(key), key)
        return seal_submission(share, status.node_public_key, CHAIN_ID, key)

    with pytest.raises(NotPermitted):
        lost.submit_recovery_share(
            *seal_submission(b"\x01" * 33, status.node_public_key, CHAIN_ID, MEMBER_KEYS[6])
        )
    encrypted, signature = submission(carol)
    with pytest.raises(NotPermitted):  # another signer, as far as anyone can tell
        lost.submit_recovery_share(encrypted, signature[:-1] + bytes([signature[-1] ^ 1]))
    to_another_enclave = seal_submission(
        open_share(second, address(carol), carol), public(bob), CHAIN_ID, carol
    )
    with pytest.raises(InvalidRequest, match="refused"):
        lost.submit_recovery_share(*to_another_enclave)
    # ... one share of two: still sealed ...
    assert lost.submit_recovery_share(encrypted, signature).sealed
    assert lost.recovery_status().submitted == (address(carol),)
    # ... the second restores the secrets, verifies the ledger, and keeps them sealed on disk.
    assert not lost.submit_recovery_share(*submission(alice)).sealed
    assert lost.network_config() == expected_config
    reopened = InProcessEnclave(store, ChainParams(chain_id=CHAIN_ID), keys_dir=tmp_path / "new-enclave")
    assert not reopened.recovery_status().sealed
    with pytest.raises(InvalidRequest, match="nothing to recover"):
        reopened.submit_recovery_share(*submission(bob))
    store.close()
    engine.dispose()
