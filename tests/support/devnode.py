"""Real `conclave dev` processes on free loopback ports, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class DevAccount:
    address: str
    key: str


@dataclass
class DevNode:
    """A running `conclave dev` process."""

    process: subprocess.Popen[str]
    rpc_url: str
    chain_id: int
    accounts: list[DevAccount]
    args: list[str] = field(default_factory=list)
    _client: httpx.Client | None = field(default=None, repr=False)

    def post(self, payload: object) -> httpx.Response:
        """POST any JSON payload to the node over one kept-alive connection."""
        if self._client is None:
            self._client = httpx.Client(timeout=30)
        return self._client.post(self.rpc_url, json=payload)

    def rpc(self, method: str, params: list | None = None) -> dict:  # type: ignore[type-arg]
        """Send one JSON-RPC request and return the whole response object."""
        return self.post({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).json()

    def result(self, method: str, params: list | None = None):  # type: ignore[no-untyped-def, type-arg]
        response = self.rpc(method, params)
        assert "error" not in response, response
        return response["result"]

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_dev_node(*extra_args: str, interpreter_args: Sequence[str] = ()) -> DevNode:
    """Start `conclave dev` on a free port and wait until it answers JSON-RPC.

    `interpreter_args` go before `-m gateway.cli`, e.g. `-m cProfile -o FILE` to profile.
    """
    args = [
        sys.executable,
        *interpreter_args,
        "-m",
        "gateway.cli",
        "dev",
        "--port",
        "0",
        "--json",
        "--log-level",
        "warning",
        *extra_args,
    ]
    process = subprocess.Popen(
        args,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise RuntimeError(f"conclave dev exited with {process.returncode} before announcing itself")
    info = json.loads(line)
    node = DevNode(
        process=process,
        rpc_url=info["rpcUrl"],
        chain_id=info["chainId"],
        accounts=[DevAccount(a["address"], a["privateKey"]) for a in info["accounts"]],
        args=list(extra_args),
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if "result" in node.rpc("eth_chainId"):
                return node
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            node.stop()
            raise RuntimeError("conclave dev did not start answering JSON-RPC")
        time.sleep(0.05)
