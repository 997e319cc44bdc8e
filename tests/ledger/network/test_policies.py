"""The transport's rules that need no sockets: which of two connections stays, back-off."""

from __future__ import annotations

import pytest

from evm_runtime.types import Address
from ledger.network import TransportConfig
from ledger.network.transport import backoff_delay, keeps_existing

LOW, HIGH = Address(b"\x01" * 20), Address(b"\x02" * 20)


@pytest.mark.parametrize(
    ("existing_dialer", "new_dialer", "keeps"),
    [
        pytest.param(LOW, HIGH, True, id="lower-dialled-stays"),
        pytest.param(HIGH, LOW, False, id="lower-dialled-replaces"),
        pytest.param(LOW, LOW, False, id="same-dialer-newer-wins"),
        pytest.param(HIGH, HIGH, False, id="same-dialer-newer-wins-high"),
    ],
)
def test_both_ends_keep_the_same_connection(
    existing_dialer: Address, new_dialer: Address, keeps: bool
) -> None:
    assert keeps_existing(LOW, HIGH, existing_dialer, new_dialer) is keeps
    assert keeps_existing(HIGH, LOW, existing_dialer, new_dialer) is keeps


def test_whichever_order_they_came_in_both_ends_keep_the_lower_dialled() -> None:
    def kept(own: Address, peer: Address, order: tuple[Address, Address]) -> Address:
        first, second = order
        return first if keeps_existing(own, peer, first, second) else second

    for order in ((LOW, HIGH), (HIGH, LOW)):
        assert kept(LOW, HIGH, order) == LOW
        assert kept(HIGH, LOW, order) == LOW


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    assert backoff_delay(0, 0.1, 5.0, rand=lambda: 0.0) == pytest.approx(0.05)
    assert backoff_delay(0, 0.1, 5.0, rand=lambda: 1.0) == pytest.approx(0.1)
    assert backoff_delay(3, 0.1, 5.0, rand=lambda: 1.0) == pytest.approx(0.8)
    assert backoff_delay(10, 0.1, 5.0, rand=lambda: 1.0) == pytest.approx(5.0)
    assert backoff_delay(10_000, 0.1, 5.0, rand=lambda: 0.0) == pytest.approx(2.5)
    delays = {backoff_delay(4, 0.1, 5.0) for _ in range(50)}
    assert len(delays) > 1 and all(0.8 <= delay < 1.6 for delay in delays)


@pytest.mark.parametrize(
    "settings",
    [
        {"queue_frames": 0},
        {"max_payload": 1024, "queue_bytes": 1023},
        {"heartbeat_interval": 5.0, "idle_timeout": 5.0},
        {"backoff_base": 0.0},
        {"backoff_base": 2.0, "backoff_max": 1.0},
        {"max_payload": 2**32},
        {"handover_timeout": 0.0},
        {"max_pending_handshakes": 0},
    ],
)
def test_inconsistent_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TransportConfig(**settings)  # type: ignore[arg-type]
