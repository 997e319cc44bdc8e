"""A local network of validator processes, made by `conclave net up`, for process-level
tests: each node a real `conclave node` process with its enclave process, on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

from gateway.net_cli import Network, node_pid, start_nodes


def free_base_port(validators: int) -> int:
    """A base port P such that P..P+n-1 and P+100..P+100+n-1 are free now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + 100 + validators >= 65_000:
            continue
        if all(_free(base + offset + i) for offset in (0, 100) for i in range(validators)):
            return base
    raise RuntimeError("no free base port")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


REPOSITORY = Path(__file__).resolve().parents[2]


def conclave(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPOSITORY,
    )


def stop_node(node: subprocess.Popen[bytes]) -> None:
    """Stop a process `start_node` started: SIGTERM to its group, SIGKILL if it lingers."""
    os.killpg(node.pid, signal.SIGTERM)
    try:
        node.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(node.pid, signal.SIGKILL)
        node.wait(10)


def start_node(config: Path, *flags: str, log: IO[str]) -> subprocess.Popen[bytes]:
    """`conclave node --config CONFIG FLAGS…` in a process group of its own, its output to `log`."""
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "gateway.cli", "node", "--config", str(config), *flags],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPOSITORY,
        start_new_session=True,
    )


class LocalNetwork:
    """`conclave net up --validators n` in `folder`, and ways to hurt it."""

    def __init__(self, folder: Path, validators: int) -> None:
        self.folder = folder
        up = conclave(
            "net", "up", "--validators", str(validators), "--base-port", str(free_base_port(validators)),
            "--dir", str(folder), "--json",
        )  # fmt: skip
        if up.returncode != 0:
            raise RuntimeError(f"net up failed:\n{up.stderr}")
        self.info: dict[str, Any] = json.loads(up.stdout)
        network = Network.load(folder)
        assert network is not None
        self.network = network
        self.urls = [node["rpcUrl"] for node in self.info["nodes"]]
        self.accounts = self.info["accounts"]
        self.client = httpx.Client(timeout=30)

    def rpc(self, index: int, method: str, *params: Any) -> Any:
        answer = self.client.post(
            self.urls[index], json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        ).json()
        if "error" in answer:
            raise RuntimeError(f"{method} on node {index}: {answer['error']}")
        return answer["result"]

    def head(self, index: int) -> tuple[int, str]:
        block = self.rpc(index, "eth_getBlockByNumber", "latest", False)
        return int(block["number"], 16), block["hash"]

    def block(self, index: int, number: int) -> dict[str, Any]:
        result: dict[str, Any] = self.rpc(index, "eth_getBlockByNumber", hex(number), False)
        return result

    def pid(self, index: int) -> int | None:
        return node_pid(self.network.nodes[index])

    def kill(self, index: int) -> None:
        """SIGKILL the node's process (its enclave process follows, its channel closed)."""
        pid = self.pid(index)
        assert pid is not None, f"node {index} is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.pid(index) is not None and time.monotonic() < deadline:
            time.sleep(0.05)

    def pause(self, index: int) -> None:
        """Freeze the node (SIGSTOP): its peers' connections to it go silent, then drop."""
        pid = self.pid(index)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)

    def resume(self, index: int) -> None:
        pid = self.pid(index)
        assert pid is not None
        os.kill(pid, signal.SIGCONT)

    def start(self, index: int) -> None:
        """Start the stopped node again, as `conclave net up` does, and wait until it answers."""
        start_nodes(self.network, [self.network.nodes[index]], timeout=60)

    def down(self) -> None:
        self.client.close()
        conclave("net", "down", "--dir", str(self.folder))
