"""The node's REST endpoints fuzzed from their own OpenAPI document (schemathesis).

Whatever schemathesis sends to `/` (JSON-RPC included), `/node/status`, `/node/quote`,
`/metrics`, the governance endpoints (`/gov/...`), sign-in (`/auth/...`), receipts and
recovery (`/recovery/...`), the node
answers without a server error and as its OpenAPI document says.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.support.devnode import start_dev_node

OPERATIONS = (
    "POST /",
    "GET /",
    "GET /node/status",
    "GET /node/quote",
    "POST /node/ledger-secrets",
    "GET /metrics",
    "GET /gov/eip712",
    "POST /gov/propose",
    "POST /gov/vote",
    "POST /gov/withdraw",
    "GET /auth/nonce",
    "POST /auth/login",
    "POST /auth/logout",
    "GET /receipts/{tx_hash}",
    # disaster recovery (docs/recovery.md)
    "GET /recovery/status",
    "GET /recovery/share/{member}",
    "POST /recovery/submit",
    "GET /recovery/reopening",
    "POST /recovery/reopening",
)


REFUSED = (
    "POST /gov/propose",
    "POST /gov/vote",
    "POST /gov/withdraw",
    "POST /auth/login",
    "POST /auth/logout",
    "POST /recovery/submit",
    "POST /recovery/reopening",
    "GET /recovery/reopening",  # 409 on a node that orders blocks: there is nothing to reopen
)


@pytest.fixture(scope="module")
def rest_schema() -> Iterator[schemathesis.BaseSchema]:
    node = start_dev_node("--ephemeral")
    yield schemathesis.openapi.from_url(node.rpc_url.rstrip("/") + "/openapi.json")
    node.stop()


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_rest_input_breaks_the_node(rest_schema: schemathesis.BaseSchema, label: str) -> None:
    operations = {operation.ok().label: operation.ok() for operation in rest_schema.get_all_operations()}
    operation = operations[label]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        # A well-formed signed message is still refused (400, with the reason; a login 401)
        # when its signature, nonce or member does not check out, which is what random ones
        # do; and a dev node has nothing to reopen.
        refusals = [positive_data_acceptance] if label in REFUSED else []
        case.call_and_validate(excluded_checks=refusals)

    check()


def test_every_rest_operation_is_fuzzed(rest_schema: schemathesis.BaseSchema) -> None:
    labels = {operation.ok().label for operation in rest_schema.get_all_operations()}
    assert labels == set(OPERATIONS)
