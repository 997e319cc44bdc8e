"""The genesis document (`gateway.genesis_document`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from eth_keys import keys
from hypothesis import given, settings
from hypothesis import strategies as st

from evm_runtime.chain import GenesisAccount
from gateway.cli import main
from gateway.genesis_document import GenesisSpec, InvalidGenesis, genesis_document, read_genesis
from governance.constitution import TWO_THIRDS, Constitution
from governance.state import GovernanceState, Member, NetworkConfig, Validator

A, B, C = (bytes([n]) * 20 for n in (0xA1, 0xB2, 0xC3))


def test_a_document_round_trips() -> None:
    spec = GenesisSpec(
        chain_id=4242,
        alloc={A: GenesisAccount(balance=10**21)},
        governance=GovernanceState(
            members={A: Member("Acme", "retail"), B: Member("Beta")},
            constitution=Constitution(
                name="Acme", thresholds={"add_user": TWO_THIRDS}, vetoes={"remove_member": frozenset({A})}
            ),
            users=frozenset({C}),
            deployers=frozenset({C}),
            config=NetworkConfig(open_submission=False),
        ),
    )
    assert read_genesis(genesis_document(spec)) == spec


def minimal(**consortium: Any) -> dict[str, Any]:
    return {"consortium": {"members": [{"address": "0x" + A.hex()}], **consortium}}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({}, "at least one member"),
        ({"consortium": {"members": [{"address": "0x12"}]}}, "consortium.members[0].address"),
        ({"consortium": {"members": [{"address": "0x" + A.hex()}] * 2}}, "listed twice"),
        (minimal(config={"open_gates": True}), "unknown keys ['open_gates']"),
        (minimal(config={"open_submission": "no"}), "expected bool"),
        (minimal(config={"block_gas_limit": 10}), "block_gas_limit"),
        (minimal(constitution={"defaultThreshold": "half"}), "defaultThreshold"),
        (minimal(constitution={"defaultThreshold": "more than 3/2"}), "fraction from 0 to 1"),
        (minimal(constitution={"votingPeriod": 1}), "voting period"),
        (minimal(constitution={"termsHash": "0x12"}), "termsHash"),
        ({**minimal(), "chainId": -1}, "chainId"),
        ({**minimal(), "alloc": {"0x" + B.hex(): {"balance": "lots"}}}, "balance"),
        ({**minimal(), "format": "other/9"}, "format"),
    ],
)
def test_a_bad_document_says_where(document: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidGenesis) as refused:
        read_genesis(document)
    assert words in str(refused.value)


def test_validators_roots_measurements_and_timestamp_round_trip() -> None:
    measurement, root = bytes([7]) * 32, bytes([9]) * 32
    spec = GenesisSpec(
        chain_id=4242,
        alloc={},
        governance=GovernanceState(
            members={A: Member("Acme")},
            validators={B: Validator("127.0.0.1:30300", measurement), C: Validator("[::1]:30301", b"")},
            attestation_roots=frozenset({root}),
            measurements=frozenset({measurement}),
        ),
        timestamp=1_767_225_600,
    )
    document = genesis_document(spec)
    assert document["timestamp"] == 1_767_225_600
    assert document["consortium"]["validators"][1] == {"address": "0x" + C.hex(), "endpoint": "[::1]:30301"}
    assert read_genesis(document) == spec


def test_a_document_without_validators_keeps_its_old_shape() -> None:
    document = genesis_document(read_genesis(minimal()))
    assert "timestamp" not in document
    assert not {"validators", "attestationRoots", "measurements"} & set(document["consortium"])


def validators(*entries: dict[str, Any], timestamp: Any = 0) -> dict[str, Any]:
    return {**minimal(validators=list(entries)), "timestamp": timestamp}


def validator(address: bytes = B, endpoint: Any = "127.0.0.1:30300", **more: Any) -> dict[str, Any]:
    return {"address": "0x" + address.hex(), "endpoint": endpoint, **more}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (validators(validator(), timestamp=None), "timestamp: a document that names validators needs one"),
        (validators(validator(), timestamp=-1), "timestamp: expected seconds since 1970"),
        (validators(validator(), timestamp="now"), "timestamp: expected seconds since 1970"),
        (
            {**minimal(validators={"0x12": "x"}), "timestamp": 0},
            "consortium.validators: expected a JSON list",
        ),
        (validators("0x" + B.hex()), "consortium.validators[0]: expected {address, endpoint"),
        (validators(validator(address=b"\x01")), "consortium.validators[0].address"),
        (
            validators(validator(endpoint="127.0.0.1")),
            'consortium.validators[0].endpoint: expected "host:port"',
        ),
        (validators(validator(endpoint="127.0.0.1:0")), "port from 1 to 65535"),
        (validators(validator(endpoint="127.0.0.1:65536")), "port from 1 to 65535"),
        (validators(validator(endpoint=30300)), "consortium.validators[0].endpoint"),
        (validators(validator(), validator()), "consortium.validators[1]: 0x" + B.hex() + " is listed twice"),
        (
            validators(validator(), validator(address=C)),
            "consortium.validators[1].endpoint: 0x" + B.hex() + " listens on 127.0.0.1:30300 already",
        ),
        (
            validators(validator(measurement="0x1234")),
            "consortium.validators[0].measurement: expected 32 bytes",
        ),
        (validators(validator(port=1)), "consortium.validators[0]: unknown keys ['port']"),
        ({**minimal(attestationRoots=["0x" + "zz" * 32])}, "consortium.attestationRoots[0]: '0xzz"),
        ({**minimal(measurements="0x" + "00" * 32)}, "consortium.measurements: expected a JSON list"),
    ],
)
def test_a_bad_validator_list_says_where(document: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidGenesis) as refused:
        read_genesis(document)
    assert words in str(refused.value)


def test_init_writes_the_validators_and_a_timestamp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "genesis.json"
    member, first, second = ("0x" + x.hex() for x in (A, B, C))
    argv = ["init", "--member", member, "--out", str(out), "--chain-id", "4242"]
    argv += ["--validator", f"{first}@127.0.0.1:30300", "--validator", f"{second}@127.0.0.1:30301"]
    before = int(time.time())
    assert main(argv) == 0
    spec = read_genesis(json.loads(out.read_text()))
    assert dict(spec.governance.validators) == {
        B: Validator("127.0.0.1:30300", b""),
        C: Validator("127.0.0.1:30301", b""),
    }
    assert spec.timestamp is not None and before <= spec.timestamp <= time.time()
    assert "2 validators: start each with `conclave node --config FILE`" in capsys.readouterr().out


def test_init_takes_a_timestamp_and_refuses_a_validator_without_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "genesis.json"
    member = "0x" + A.hex()
    assert main(["init", "--member", member, "--out", str(out), "--timestamp", "12"]) == 0
    assert read_genesis(json.loads(out.read_text())).timestamp == 12
    assert (
        main(["init", "--member", member, "--out", str(out), "--force", "--validator", "0x" + B.hex()]) == 1
    )
    assert "--validator 0x" + B.hex() + ": expected ADDRESS@HOST:PORT" in capsys.readouterr().err


# -- members' recovery keys (docs/recovery.md) ----------------------------------------------

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _account(secret: int) -> tuple[bytes, bytes]:
    """An account's address and its compressed public key."""
    public = keys.PrivateKey(secret.to_bytes(32, "big")).public_key
    return public.to_canonical_address(), public.to_compressed_bytes()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, SECP256K1_ORDER - 1), st.booleans(), st.text(max_size=12)),
        min_size=1,
        max_size=4,
        unique_by=lambda member: member[0],
    )
)
def test_members_recovery_keys_round_trip(members: list[tuple[int, bool, str]]) -> None:
    state = GovernanceState(
        members={
            _account(secret)[0]: Member(name or "x", recovery_key=_account(secret)[1] if keyed else b"")
            for secret, keyed, name in members
        }
    )
    spec = GenesisSpec(chain_id=4242, alloc={}, governance=state)
    document = genesis_document(spec)
    assert read_genesis(json.loads(json.dumps(document))) == spec
    written = {entry["address"]: entry.get("recoveryKey") for entry in document["consortium"]["members"]}
    assert written == {
        "0x" + _account(secret)[0].hex(): ("0x" + _account(secret)[1].hex() if keyed else None)
        for secret, keyed, _ in members
    }


def _keyed(key: Any, owner: int = 7, index_before: int = 0) -> dict[str, Any]:
    """A document whose member number `index_before` (0-based) carries `key` as recoveryKey."""
    address = "0x" + _account(owner)[0].hex()
    others = [{"address": "0x" + (bytes([n + 1]) * 20).hex()} for n in range(index_before)]
    return {"consortium": {"members": [*others, {"address": address, "recoveryKey": key}]}}


def test_a_member_recovery_key_is_read_compressed_and_checked_against_its_address() -> None:
    address, public = _account(7)
    member = read_genesis(_keyed("0x" + public.hex())).governance.members[address]
    assert member.recovery_key == public
    assert "recoveryKey" not in genesis_document(read_genesis(minimal()))["consortium"]["members"][0]


@pytest.mark.parametrize(
    ("key", "index", "words"),
    [
        ("0x" + _account(7)[1].hex()[:-2], 0, "consortium.members[0].recoveryKey: expected a compressed"),
        (_account(7)[1].hex(), 0, "33 bytes in 0x-prefixed hex"),
        (42, 1, "consortium.members[1].recoveryKey: expected a compressed"),
        ("0x" + "zz" * 33, 0, "consortium.members[0].recoveryKey: '0xzz"),
        ("0x04" + _account(7)[1].hex()[2:], 0, "starts with 0x02 or 0x03"),
        ("0x02" + "ff" * 32, 2, "consortium.members[2].recoveryKey: 0x02ff"),
        ("0x" + _account(8)[1].hex(), 1, f"is the key of 0x{_account(8)[0].hex()}, not of this member"),
    ],
)
def test_a_bad_recovery_key_says_where(key: Any, index: int, words: str) -> None:
    with pytest.raises(InvalidGenesis) as refused:
        read_genesis(_keyed(key, index_before=index))
    assert words in str(refused.value)


def test_init_puts_each_recovery_key_on_its_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (alice, alice_key), (bob, _), (carol, carol_key) = (_account(n) for n in (7, 8, 9))
    out = tmp_path / "genesis.json"
    argv = ["init", "--out", str(out)] + [f"--member=0x{a.hex()}:M" for a in (alice, bob)]
    assert main([*argv, "--recovery-key", "0x" + alice_key.hex()]) == 0
    members = read_genesis(json.loads(out.read_text())).governance.members
    assert members[alice].recovery_key == alice_key and members[bob].recovery_key == b""
    assert "1 members have recovery keys" in capsys.readouterr().out
    assert main([*argv, "--force", "--recovery-key", "0x" + carol_key.hex()]) == 1
    assert f"the key of 0x{carol.hex()}" in capsys.readouterr().err.lower()
    assert main([*argv, "--force", "--recovery-key", "0x1234"]) == 1
    assert "--recovery-key 0x1234: expected a compressed secp256k1 public key" in capsys.readouterr().err
