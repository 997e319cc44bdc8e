"""`POST /node/ledger-secrets`: a validator's enclave quote gets the ledger secrets wrapped
for that enclave; any other quote is refused."""

from __future__ import annotations

import httpx

from enclave.secret_transfer import transfer_report_data
from tests.support.devnode import DevNode


def _quote(node: DevNode, report_data: bytes) -> str:
    answer = httpx.get(
        f"{node.rpc_url}/node/quote", params={"reportData": "0x" + report_data.hex()}, timeout=30
    )
    return str(answer.raise_for_status().json()["quote"])


def _ask(node: DevNode, quote: str) -> httpx.Response:
    return httpx.post(f"{node.rpc_url}/node/ledger-secrets", json={"quote": quote}, timeout=30)


def test_a_validators_quote_for_this_chain_gets_wrapped_secrets(node: DevNode) -> None:
    answer = _ask(node, _quote(node, transfer_report_data(node.chain_id)))
    assert answer.status_code == 200, answer.text
    wrapped = bytes.fromhex(answer.json()["wrapped"][2:])
    assert wrapped[0] == 1 and len(wrapped) > 1 + 33 + 12 + 16


def test_other_quotes_are_refused_with_the_reason(node: DevNode) -> None:
    for report_data in (b"", transfer_report_data(node.chain_id + 1)):
        refused = _ask(node, _quote(node, report_data))
        assert refused.status_code == 403 and "report data" in refused.json()["detail"]
    garbage = _ask(node, "0x" + "ab" * 40)
    assert garbage.status_code == 403, garbage.text
    assert _ask(node, "not hex").status_code == 422
