"""The genesis document (`gateway.genesis_document`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

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
