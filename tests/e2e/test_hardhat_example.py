"""End-to-end: the Hardhat 3 project in examples/hardhat compiles its contract with solc-js,
deploys it to a running dev node (its `conclave` network) and passes its tests, which use
Hardhat's network helpers (loadFixture's snapshots, time.increase, setBalance).

Needs `npm ci` in examples/hardhat (`make test` runs it): that project pins Node.js 22
(the `node` package), which Hardhat 3 requires, and runs on it.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.devnode import REPO_ROOT, start_dev_node

EXAMPLE = REPO_ROOT / "examples" / "hardhat"
BIN = EXAMPLE / "node_modules" / ".bin"
HARDHAT_TIMEOUT = 300
TESTS_IN_EXAMPLE = 5


def _installed() -> Path:
    for tool in ("node", "hardhat"):
        if not (BIN / tool).exists():
            pytest.fail(
                f"examples/hardhat/node_modules/.bin/{tool} is missing: run `make test`, or "
                "`npm ci --prefix examples/hardhat` and then the same `npm install --no-save` "
                "with examples/hardhat/node_modules/.bin first on PATH (the Makefile shows how)"
            )
    return BIN / "hardhat"


def test_the_hardhat_example_deploys_and_passes_its_tests() -> None:
    hardhat = _installed()
    node = start_dev_node("--ephemeral")
    try:
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "CONCLAVE_RPC_URL": node.rpc_url,
            "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true",
            "NO_COLOR": "1",
        }
        run = subprocess.run(
            [str(hardhat), "test", "--network", "conclave"],
            cwd=EXAMPLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=HARDHAT_TIMEOUT,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, output
        assert re.search(rf"\b{TESTS_IN_EXAMPLE} passing\b", output), output
        assert "failing" not in output, output

        # What the tests left: the fixture's deployment (later blocks were reverted away).
        head = int(node.result("eth_blockNumber"), 16)
        creations = [
            receipt
            for number in range(1, head + 1)
            for receipt in node.result("eth_getBlockReceipts", [hex(number)])
            if receipt["contractAddress"] is not None
        ]
        assert len(creations) == 1 and creations[0]["status"] == "0x1"
        vault = creations[0]["contractAddress"]
        assert int(node.result("eth_getBalance", [vault, "latest"]), 16) == 10**18
    finally:
        node.stop()
