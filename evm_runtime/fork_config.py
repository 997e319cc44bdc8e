"""The chain's fork configuration, as EIP-7910 (eth_config) describes one.

Conclave runs Prague from genesis and schedules no other fork, so there is one
configuration, active from time 0:

- its fork id is EIP-2124's FORK_HASH (EIP-6122 for time-based forks): the CRC32 of the
  genesis hash, updated with each fork's block number or timestamp passed since genesis.
  A fork active at genesis is not counted, so here it is the CRC32 of the genesis hash;
- its precompiles are Prague's (0x01 to 0x11), named as EIP-7910 names them;
- its blob schedule is Prague's (EIP-7691), though no block carries blobs here;
- its system contracts are those the chain's blocks use. Conclave's block processing makes
  none of Prague's system calls (EIP-4788 beacon roots, EIP-2935 block hashes, EIP-6110,
  EIP-7002 and EIP-7251 requests), so those are not listed; the chain's own (governance)
  are, when its genesis holds them.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from eth.vm.forks.cancun.constants import GAS_PER_BLOB
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.constants import (
    BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
    MAX_BLOB_GAS_PER_BLOCK,
    TARGET_BLOB_GAS_PER_BLOCK,
)

from .types import Address, Hash32

ACTIVATION_TIME = 0
"""Prague's rules apply from the genesis block on."""


def _address(number: int) -> Address:
    return Address(number.to_bytes(20, "big"))


PRAGUE_PRECOMPILES: tuple[tuple[str, Address], ...] = (
    ("ECREC", _address(0x01)),
    ("SHA256", _address(0x02)),
    ("RIPEMD160", _address(0x03)),
    ("ID", _address(0x04)),
    ("MODEXP", _address(0x05)),
    ("BN254_ADD", _address(0x06)),
    ("BN254_MUL", _address(0x07)),
    ("BN254_PAIRING", _address(0x08)),
    ("BLAKE2F", _address(0x09)),
    ("KZG_POINT_EVALUATION", _address(0x0A)),
    ("BLS12_G1ADD", _address(0x0B)),
    ("BLS12_G1MSM", _address(0x0C)),
    ("BLS12_G2ADD", _address(0x0D)),
    ("BLS12_G2MSM", _address(0x0E)),
    ("BLS12_PAIRING_CHECK", _address(0x0F)),
    ("BLS12_MAP_FP_TO_G1", _address(0x10)),
    ("BLS12_MAP_FP2_TO_G2", _address(0x11)),
)
"""Prague's precompiles by their EIP-7910 names."""


@dataclass(frozen=True, slots=True)
class BlobSchedule:
    """A fork's blob limits per block (in blobs) and its blob base fee's update fraction."""

    target: int
    max: int
    base_fee_update_fraction: int


PRAGUE_BLOB_SCHEDULE = BlobSchedule(
    target=TARGET_BLOB_GAS_PER_BLOCK // GAS_PER_BLOB,
    max=MAX_BLOB_GAS_PER_BLOCK // GAS_PER_BLOB,
    base_fee_update_fraction=BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE,
)


@dataclass(frozen=True, slots=True)
class ForkConfig:
    """One fork's configuration (EIP-7910's configuration object)."""

    activation_time: int
    chain_id: int
    fork_id: bytes
    blob_schedule: BlobSchedule
    precompiles: tuple[tuple[str, Address], ...]
    system_contracts: tuple[tuple[str, Address], ...]


def fork_id(genesis_hash: Hash32, fork_points: Iterable[int] = ()) -> bytes:
    """EIP-2124's FORK_HASH: CRC32 of the genesis hash, then of each past fork point
    (block number or timestamp, as 8 big-endian bytes), in order; 0 (genesis) is skipped."""
    checksum = zlib.crc32(genesis_hash)
    for point in sorted(set(fork_points)):
        if point > 0:
            checksum = zlib.crc32(point.to_bytes(8, "big"), checksum)
    return checksum.to_bytes(4, "big")


def active_precompiles() -> tuple[tuple[str, Address], ...]:
    """Prague's named precompiles that py-evm runs (all of them: a test keeps it so)."""
    running = PragueComputation.get_precompiles()
    return tuple((name, address) for name, address in PRAGUE_PRECOMPILES if address in running)


def current_config(
    chain_id: int, genesis_hash: Hash32, system_contracts: Mapping[str, Address]
) -> ForkConfig:
    """The configuration in force: Prague from genesis, with the system contracts present."""
    return ForkConfig(
        activation_time=ACTIVATION_TIME,
        chain_id=chain_id,
        fork_id=fork_id(genesis_hash),
        blob_schedule=PRAGUE_BLOB_SCHEDULE,
        precompiles=active_precompiles(),
        system_contracts=tuple(sorted(system_contracts.items())),
    )
