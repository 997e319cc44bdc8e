"""The genesis document (`gateway.genesis_document`)."""

from __future__ import annotations

from typing import Any

import pytest

from evm_runtime.chain import GenesisAccount
from gateway.genesis_document import GenesisSpec, InvalidGenesis, genesis_document, read_genesis
from governance.constitution import TWO_THIRDS, Constitution
from governance.state import GovernanceState, Member, NetworkConfig

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
