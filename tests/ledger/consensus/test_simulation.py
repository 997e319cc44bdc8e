"""Seeded simulations of whole networks: agreement, validity and liveness on every run.

Each run draws a hostile schedule from its seed (`Schedule.random`): random delays and
reordering, drops, duplicates, partitions, up to f honest nodes crashing and restarting,
one Byzantine node when f >= 1 (two among seven in `test_two_byzantine_among_seven`).
A failing run names its `n` and `seed`: `Simulation(Schedule.random(n, seed)).run()`
replays it exactly.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.consensus.qbft import Drop, QbftInstance

from .simulation import Schedule, Simulation, SimulationResult

FIXED = (
    [(1, seed) for seed in range(10)] + [(4, seed) for seed in range(60)] + [(7, seed) for seed in range(40)]
)


@cache
def run(n: int, seed: int, byzantine: int | None = None) -> SimulationResult:
    return Simulation(Schedule.random(n, seed, byzantine=byzantine)).run()


def check(result: SimulationResult) -> None:
    schedule = result.schedule
    replay = f"Schedule.random({schedule.n}, {schedule.seed}, byzantine={schedule.byzantine})"
    assert not result.violations, f"{replay}: {result.violations[:3]}"
    assert result.live, f"{replay}: honest nodes at heights {result.heights} at t={result.time:.1f}"


@pytest.mark.parametrize(("n", "seed"), FIXED, ids=[f"n{n}-seed{seed}" for n, seed in FIXED])
def test_fixed_schedules(n: int, seed: int) -> None:
    check(run(n, seed))


@settings(max_examples=100, deadline=None, database=None)
@given(n=st.sampled_from([1, 4, 7]), seed=st.integers(min_value=1_000, max_value=2**32 - 1))
def test_random_schedules(n: int, seed: int) -> None:
    check(Simulation(Schedule.random(n, seed)).run())


@pytest.mark.parametrize("seed", range(15))
def test_two_byzantine_among_seven(seed: int) -> None:
    check(run(7, seed, byzantine=2))


def test_the_schedules_are_hostile() -> None:
    """The fixed runs meet every fault they are meant to survive (or passing means little)."""
    results = [run(n, seed) for n, seed in FIXED]
    counters: dict[str, int] = {}
    for result in results:
        for key, value in result.counters.items():
            counters[key] = counters.get(key, 0) + value
    for reason in (
        Drop.EQUIVOCATION,
        Drop.UNJUSTIFIED,
        Drop.BAD_SIGNATURE,
        Drop.MALFORMED,
        Drop.DUPLICATE,
        Drop.STALE_ROUND,
        Drop.OLD_HEIGHT,
        Drop.ROUND_TOO_FAR,
    ):
        assert counters.get(reason, 0) > 0, reason
    assert sum(result.restarts for result in results) >= 20
    assert sum(result.evidence for result in results) > 0
    assert sum(bool(result.schedule.partitions) for result in results) >= 20
    assert sum(any(c.after_commit for c in result.schedule.crashes) for result in results) >= 10


def test_a_run_is_deterministic() -> None:
    first, second = (Simulation(Schedule.random(7, 3)).run() for _ in range(2))
    assert (first.time, first.events, first.heights, first.counters) == (
        second.time,
        second.events,
        second.heights,
        second.counters,
    )


def test_the_checks_catch_a_protocol_without_justification(monkeypatch: pytest.MonkeyPatch) -> None:
    """With proposals for later rounds accepted unjustified (so a block that may have been
    decided is not re-proposed), the Byzantine node splits the honest ones in some run."""
    monkeypatch.setattr(QbftInstance, "_justified", lambda self, proposal: True)
    for seed in range(100):
        result = Simulation(Schedule.random(4, seed)).run()
        if any(v.startswith("agreement") for v in result.violations):
            return
    pytest.fail("no run of the broken protocol broke agreement")
