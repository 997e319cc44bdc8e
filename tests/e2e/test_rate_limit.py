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
        statuses = [client.post(limited.rpc_url, json=_call(i)).status_code for i in range(2 * RATE)]
        assert statuses.count(200) >= 2 * RATE - 2, statuses
        refused = client.post(limited.rpc_url, json=_call(0))
        assert refused.status_code == 429
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
