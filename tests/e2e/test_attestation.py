"""End-to-end: a node's quote over `/node/quote`, checked by `conclave attest`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from enclave.attestation import TRUSTED_PACKAGES, measure_enclave, verify_quote
from tests.e2e.chain_helpers import REPO_ROOT, run_conclave
from tests.support.devnode import DevNode, start_dev_node


def _quote(node: DevNode, report_data: str = "0x") -> httpx.Response:
    return httpx.get(node.rpc_url.rstrip("/") + "/node/quote", params={"reportData": report_data}, timeout=10)


def test_the_quote_binds_the_code_the_key_and_the_challenge(node: DevNode) -> None:
    challenge = os.urandom(32)
    served = _quote(node, "0x" + challenge.hex()).json()
    quote = verify_quote(
        bytes.fromhex(served["quote"][2:]),
        roots=[bytes.fromhex(served["attestationRoot"][2:])],
        approved_measurements={measure_enclave(REPO_ROOT)},
        now=int(time.time()),
        max_age=60,
        report_data=challenge,
    )
    assert "0x" + quote.node_public_key.hex() == served["nodePublicKey"]
    status = httpx.get(node.rpc_url.rstrip("/") + "/node/status", timeout=10).json()
    assert status["enclave"]["validatorAddress"] == served["nodeAddress"]


def test_bad_report_data_is_refused_with_the_rule(node: DevNode) -> None:
    for bad in ("0xzz", "0x" + "00" * 65, "00", "0x0"):
        refused = _quote(node, bad)
        assert refused.status_code == 422, bad
        assert "0x([0-9a-fA-F]{2}){0,64}" in refused.text


def test_conclave_attest_verifies_a_live_node(node: DevNode) -> None:
    result = run_conclave("attest", "--url", node.rpc_url, "--json")
    assert result.returncode == 0, result
    report = json.loads(result.stdout)
    assert report["verified"] is True and report["measurement"] == "0x" + measure_enclave(REPO_ROOT).hex()
    assert any("--root" in warning for warning in report["warnings"])


def test_conclave_attest_refuses_a_tampered_quote_and_unapproved_code(node: DevNode) -> None:
    served = _quote(node).json()
    raw = bytearray(bytes.fromhex(served["quote"][2:]))
    raw[40] ^= 1
    tampered = run_conclave("attest", "--quote", "0x" + raw.hex(), "--root", served["attestationRoot"])
    assert tampered.returncode == 1 and "attestation FAILED" in tampered.stdout
    other = run_conclave("attest", "--url", node.rpc_url, "--measurement", "0x" + "ab" * 32)
    assert other.returncode == 1 and "not an approved enclave measurement" in other.stdout


def test_a_node_running_modified_enclave_code_fails_attestation(tmp_path: Path) -> None:
    for package in (*TRUSTED_PACKAGES, "gateway", "migrations"):
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    patched = tmp_path / "evm_runtime" / "fees.py"
    patched.write_text(patched.read_text() + "\n# a change an attacker would make\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "dev", "--port", "0", "--json", "--ephemeral"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        deadline = time.monotonic() + 30
        while True:
            try:
                served = httpx.get(info["rpcUrl"].rstrip("/") + "/node/quote", timeout=5).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the modified node did not start"
                time.sleep(0.1)
        assert served["measurement"] != "0x" + measure_enclave(REPO_ROOT).hex()
        result = run_conclave("attest", "--url", info["rpcUrl"])
        assert result.returncode == 1 and "not an approved enclave measurement" in result.stdout
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_node_key_survives_a_restart(tmp_path: Path) -> None:
    def address() -> str:
        node = start_dev_node("--data-dir", str(tmp_path))
        try:
            return str(_quote(node).json()["nodeAddress"])
        finally:
            node.stop()

    first = address()
    assert address() == first
    assert (tmp_path / "enclave" / "node-identity.sealed").exists()
