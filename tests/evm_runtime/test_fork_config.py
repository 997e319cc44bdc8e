"""The fork configuration (EIP-7910) and fork id (EIP-2124, EIP-6122)."""

from __future__ import annotations

import pytest
from eth.vm.forks.prague.computation import PragueComputation

from evm_runtime.fork_config import (
    PRAGUE_BLOB_SCHEDULE,
    PRAGUE_PRECOMPILES,
    active_precompiles,
    current_config,
    fork_id,
)
from evm_runtime.types import Address, Hash32

MAINNET_GENESIS = Hash32(bytes.fromhex("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"))


@pytest.mark.parametrize(
    ("fork_points", "expected"),
    [
        ((), "fc64ec04"),  # Frontier
        ((1_150_000,), "97c2c34c"),  # Homestead
        ((1_150_000, 1_920_000), "91d1f948"),  # DAO fork
        ((1_150_000, 1_920_000, 2_463_000, 2_675_000, 4_370_000), "a00bc324"),  # Byzantium
    ],
    ids=["frontier", "homestead", "dao", "byzantium"],
)
def test_fork_id_matches_the_eip_2124_mainnet_vectors(fork_points: tuple[int, ...], expected: str) -> None:
    assert fork_id(MAINNET_GENESIS, fork_points).hex() == expected


def test_a_fork_at_genesis_does_not_change_the_fork_id() -> None:
    assert fork_id(MAINNET_GENESIS, (0, 0)) == fork_id(MAINNET_GENESIS)


def test_every_prague_precompile_runs_and_is_named_once() -> None:
    running = {address for address in PragueComputation.get_precompiles()}
    assert active_precompiles() == PRAGUE_PRECOMPILES
    assert {address for _, address in PRAGUE_PRECOMPILES} == running
    assert len({name for name, _ in PRAGUE_PRECOMPILES}) == len(PRAGUE_PRECOMPILES) == 17


def test_the_blob_schedule_is_pragues() -> None:
    assert (PRAGUE_BLOB_SCHEDULE.target, PRAGUE_BLOB_SCHEDULE.max) == (6, 9)
    assert PRAGUE_BLOB_SCHEDULE.base_fee_update_fraction == 5_007_716


def test_the_current_config_is_prague_from_genesis() -> None:
    governance = Address(bytes.fromhex("00000000000000000000000000000000000c0c1e"))
    config = current_config(1337, MAINNET_GENESIS, {"Z_CONTRACT": governance, "A_CONTRACT": governance})
    assert config.activation_time == 0 and config.chain_id == 1337
    assert config.fork_id == bytes.fromhex("fc64ec04")
    assert [name for name, _ in config.system_contracts] == ["A_CONTRACT", "Z_CONTRACT"]
    assert dict(config.precompiles)["ECREC"] == Address(b"\x00" * 19 + b"\x01")
