"""The enclave process's own pacing of its two threads (`enclave.main.pace_threads`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from enclave.main import ALONE_SWITCH_INTERVAL, SHARED_SWITCH_INTERVAL, pace_threads
from evm_runtime.types import Address


@pytest.fixture(autouse=True)
def switch_interval_kept() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def named(count: int) -> SimpleNamespace:
    """An enclave whose head names `count` validators."""
    validators = {Address(bytes([i]) * 20): f"127.0.0.1:{30_000 + i}" for i in range(count)}
    return SimpleNamespace(validators=lambda block_number=None: validators)


@pytest.mark.parametrize(
    ("validators", "interval"),
    [
        (0, ALONE_SWITCH_INTERVAL),
        (1, ALONE_SWITCH_INTERVAL),
        (2, SHARED_SWITCH_INTERVAL),
        (4, SHARED_SWITCH_INTERVAL),
    ],
)
def test_alone_the_threads_switch_sooner_than_with_other_validators(validators: int, interval: float) -> None:
    pace_threads(named(validators))  # type: ignore[arg-type]
    assert sys.getswitchinterval() == pytest.approx(interval)
