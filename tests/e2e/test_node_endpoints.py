"""`/node/status` and `/metrics` on a running node, as an operator's tools read them."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from web3 import Web3

from tests.e2e.chain_helpers import dev_signer, wait_receipt
from tests.support.devnode import DevNode


def _url(node: DevNode, path: str) -> str:
    return node.rpc_url.rstrip("/") + path


def test_status_reports_health_head_and_measurement(node: DevNode, w3: Web3) -> None:
    response = httpx.get(_url(node, "/node/status"), timeout=10)
    assert response.status_code == 200
    status = response.json()
    assert status["status"] == "healthy"
    assert status["chainId"] == node.chain_id
    assert status["latestBlock"]["number"] <= w3.eth.block_number
    enclave = status["enclave"]
    assert enclave["mode"] == "process" and enclave["alive"] is True and enclave["restarts"] == 0
    assert len(bytes.fromhex(enclave["measurement"][2:])) == 32


def test_metrics_are_prometheus_text_and_count_work(node: DevNode, w3: Web3) -> None:
    signer = dev_signer(w3, node.accounts[7])
    wait_receipt(w3, signer.send(to=node.accounts[8].address, value=1))
    response = httpx.get(_url(node, "/metrics"), timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    assert samples[("conclave_rpc_request_seconds_count", (("method", "eth_sendRawTransaction"),))] >= 1
    assert samples[("conclave_transactions_total", ())] >= 1
    assert samples[("conclave_latest_block", ())] >= 1
    assert samples[("conclave_enclave_call_seconds_count", (("call", "admit_many"),))] >= 1  # HTTP: gathered
    assert samples[("conclave_enclave_call_seconds_count", (("call", "execute"),))] >= 1
