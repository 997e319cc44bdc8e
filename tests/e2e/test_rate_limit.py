"""End-to-end: `conclave dev --rate-limit` refuses a client over its budget with 429 and -32005."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.devnode import DevNode, start_dev_node

RATE = 20


@pytest.fixture(scope="module")
def limited() -> Iterator[DevNode]:
    node = start_dev_node("--ephemeral", "--rate-limit", str(RATE))
    yield node
    node.stop()


def _call(index: int) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": index, "method": "eth_blockNumber", "params": []}


def test_a_client_over_its_budget_is_told_when_to_retry(limited: DevNode) -> None:
    time.sleep(2.0)  # a full bucket (2 × RATE), whatever start-up spent
    with httpx.Client(timeout=10) as client:
        # Send until refused: a full bucket, plus what refills while the requests go out
        # (a loaded machine answers slowly), must pass, and not much more.
        started, answered, refused = time.monotonic(), 0, None
        while refused is None and answered < 20 * RATE:
            response = client.post(limited.rpc_url, json=_call(answered))
            if response.status_code == 429:
                refused = response
            else:
                assert response.status_code == 200
                answered += 1
        refill = RATE * (time.monotonic() - started)
        assert refused is not None and 2 * RATE - 2 <= answered <= 2 * RATE + refill + 2, answered
        assert int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == -32005 and "rate limit exceeded" in error["message"]
        time.sleep(1.0)
        assert client.post(limited.rpc_url, json=_call(1)).status_code == 200


def test_a_batch_counts_each_request(limited: DevNode) -> None:
    time.sleep(2.0)
    with httpx.Client(timeout=10) as client:
        too_big = client.post(limited.rpc_url, json=[_call(i) for i in range(2 * RATE + 1)])
        assert too_big.status_code == 429
        assert "never fits" in too_big.json()["error"]["message"]
        fits = client.post(limited.rpc_url, json=[_call(i) for i in range(RATE)])
        assert fits.status_code == 200 and len(fits.json()) == RATE


def test_without_the_flag_there_is_no_limit(dev_node: DevNode) -> None:
    with httpx.Client(timeout=10) as client:
        batch = [_call(i) for i in range(500)]
        assert all(client.post(dev_node.rpc_url, json=batch).status_code == 200 for _ in range(3))
