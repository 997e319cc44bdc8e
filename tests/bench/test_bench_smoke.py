"""The read benchmarks and `bench.confidential` run end to end with tiny sizes and report every figure.

Speed is not asserted here (benchmarks print it); these keep the benchmarks from rotting.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import confidential, eth_call_throughput, get_logs

LATENCY_KEYS = {"p50", "p90", "p99", "max"}


def run_json(main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[no-untyped-def]
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eth_call_throughput_reports_every_way_and_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(
        eth_call_throughput.main,
        ["--calls", "24", "--connections", "3", "--batch", "5", "--holders", "2"],
        capsys,
    )

    assert set(result["http"]) == {"single", "concurrent", "batched"}
    assert set(result["reference"]) == {"enclave_call", "call_context"}
    for figures in [*result["http"].values(), *result["reference"].values()]:
        assert figures["calls"] == 24
        assert figures["calls_per_second"] > 0
        assert set(figures["latency_ms"]) == LATENCY_KEYS
        assert "cpu_us_per_call" in figures
    assert set(result["ratios"]) == set(result["cpu_ratios"]) == {"single", "concurrent", "batched"}
    assert result["answers_match"] is True
    assert result["node_peak_rss_bytes"] > 0
    assert result["enclave_peak_rss_bytes"] > 0  # the enclave runs in its own process by default
    assert "HTTP, batches of 5" in eth_call_throughput.report_table(result)


def test_get_logs_pages_and_reports_every_query_and_tier(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    profile = tmp_path / "node.prof"
    result = run_json(
        get_logs.main,
        [
            *("--logs", "300", "--logs-per-tx", "40", "--senders", "2", "--repeat", "1"),
            *("--page-size", "100", "--enclave", "in-process", "--profile", str(profile)),
        ],
        capsys,
    )

    assert result["logs"] == 7 * 43  # 7 transactions of 40 Counted + 3 more logs
    assert result["node_max_log_results"] == 301
    queries = result["queries"]
    assert set(queries) == {
        "all logs, in pages",
        "all logs",
        "address",
        "topic0 Counted",
        "topic0 ValueSet",
        "topic1 sender",
        "address+topic0+topic1",
    }
    assert queries["all logs, in pages"]["requests"] > 1
    assert queries["all logs"]["requests"] == 1
    assert queries["topic0 Counted"]["logs"] == 7 * 40
    assert queries["topic0 ValueSet"]["logs"] == 7
    assert queries["topic1 sender"]["logs"] == 4  # the first of two senders sent transactions 0, 2, 4, 6
    for figures in queries.values():
        for tier in ("http", "store_json", "store", "sqlite3"):
            assert figures[tier]["seconds"] > 0
            assert "logs_per_second" in figures[tier]
        assert "client_parse_seconds" in figures["http"]
        assert set(figures["factors"]) == {
            "http_over_store",
            "http_over_sqlite3",
            "store_json_over_store",
            "store_over_sqlite3",
        }
        assert figures["sqlite_plan"]
    assert set(result["node_peak_rss_bytes"]) == {
        "after_fill",
        "after_paged_scan",
        "after_one_request_queries",
    }
    assert result["enclave_peak_rss_bytes"] is None
    assert profile.exists() and result["profile"]["our_functions"]
    assert {"function", "calls", "own_seconds", "cumulative_seconds"} <= set(
        result["profile"]["our_functions"][0]
    )
    assert result["profile"]["self_time_by_package"]
    assert "all logs, in pages" in get_logs.report_table(result)


def test_confidential_reports_both_kinds_of_writes_and_reads(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(
        confidential.main,
        ["--writes", "12", "--senders", "3", "--rounds", "2", "--reads", "4", "--log-queries", "2"],
        capsys,
    )

    assert [(b["kind"], b["transactions"]) for b in result["batches"]] == [
        ("public", 6),
        ("confidential", 6),
        ("confidential", 6),
        ("public", 6),
    ]
    for kind in ("public", "confidential"):
        figures = result["by_kind"][kind]
        assert figures["transactions"] == 12
        assert figures["tps"] > 0
        assert figures["gas_used_per_tx"] > 0
        assert result["stored"][kind]["transactions"] == 12
        assert result["stored"][kind]["bytes_per_tx"] > 0
    assert result["write_ratio"] > 0
    assert set(result["receipts"]) == {"public", "public, signed in", "confidential, party"}
    assert result["logs"]["batch"]["logs_per_query"] == 6
    assert result["logs"]["all"]["logs_per_query"] == 12
    assert set(result["logs"]["all"]["reads"]) == {
        "public",
        "public, signed in",
        "confidential, party",
        "confidential, outsider",
    }
    for figures in [
        *result["receipts"].values(),
        *result["logs"]["batch"]["reads"].values(),
        *result["logs"]["all"]["reads"].values(),
    ]:
        assert figures["calls"] > 0
        assert set(figures["latency_ms"]) == LATENCY_KEYS
    assert set(result["read_ratios"]) == {
        "receipt",
        "receipt_vs_signed_in",
        "logs_batch",
        "logs_batch_vs_signed_in",
        "logs_all",
        "logs_all_vs_signed_in",
    }
    for when in ("after_writes", "after_reads"):
        assert result["node_peak_rss_bytes"][when] > 0
        assert result["enclave_peak_rss_bytes"][when] > 0  # the enclave runs in its own process
    assert "eth_getLogs, one batch's blocks" in confidential.report_table(result)
