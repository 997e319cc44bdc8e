"""The purchase-order demo (examples/purchase_orders/demo.py) against a real dev node.

The demo checks itself: it exits 0 only if every party saw the contract and its
transactions by every read method and nobody else saw anything. Here we run it as CI
does and check the story it tells, step by step; and check, without a node, that its
judging turns what a viewer saw into the failures it must exit 1 for.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.devnode import DevNode, start_dev_node

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "examples" / "purchase_orders" / "demo.py"
DEMO_TIMEOUT_S = 300
VIEWERS = ("retailer", "distributor A", "distributor B", "vendor", "auditor", "member", "anonymous")
PARTY, NOTHING = "sees it all (party)", "sees nothing"


@pytest.fixture(scope="module")
def node() -> Iterator[DevNode]:
    """A node of this module's own: the demo uses dev accounts 0 to 5 and governance."""
    node = start_dev_node("--ephemeral")
    yield node
    node.stop()


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("purchase_orders_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def verdicts(output: str) -> dict[int, dict[str, str]]:
    """Step number -> viewer -> the verdict the demo's table printed."""
    steps: dict[int, dict[str, str]] = {}
    for section in output.split("\n== Step ")[1:]:
        number = int(section.split(":", 1)[0])
        rows = steps.setdefault(number, {})
        for line in section.splitlines():
            for viewer in VIEWERS:
                if line.startswith(f"  {viewer}  "):
                    verdict = line.rsplit("  ", 1)[-1].strip()
                    rows[viewer] = line[line.index("FAIL:") :] if "FAIL:" in line else verdict
    return steps


def test_the_demo_tells_the_story_and_nobody_sees_what_they_should_not(node: DevNode) -> None:
    proc = subprocess.run(
        [sys.executable, str(DEMO), "--rpc", node.rpc_url, "--wait", "10"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    details = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, f"the demo exited {proc.returncode}\n{details}"
    out = proc.stdout
    assert "RESULT: OK" in out, details
    assert "conclave_sendRawPrivateTransaction" in out
    assert "to distributor B the contract is an empty account" in out

    seen = verdicts(out)
    assert sorted(seen) == [1, 2, 3, 4, 5], details
    expected_parties = {
        1: {"retailer", "distributor A"},
        2: {"retailer", "distributor A"},
        3: {"retailer", "distributor A"},
        4: {"retailer", "distributor A", "vendor"},
        5: {"retailer", "distributor A", "vendor", "auditor"},
    }
    for step, parties in expected_parties.items():
        want = {viewer: PARTY if viewer in parties else NOTHING for viewer in VIEWERS}
        assert seen[step] == want, f"step {step}\n{details}"


def test_the_demo_fails_on_a_leak_or_a_miss() -> None:
    demo = load_demo()
    expected = demo.Expected(code=100, orders=((1, "Blue widgets", 250, 1, "0x" + "00" * 20),), txs=2, logs=1)
    # An outsider who sees nothing passes; any one thing seen is a leak.
    assert demo.problems(demo.Sight(), False, expected) == []
    assert demo.problems(demo.Sight(code=100), False, expected) == ["LEAK eth_getCode"]
    assert demo.problems(demo.Sight(txs=1, logs=1), False, expected) == [
        "LEAK eth_getTransactionByHash",
        "LEAK eth_getLogs",
    ]
    assert demo.problems(demo.Sight(orders=()), False, expected) == ["LEAK eth_call"]
    assert demo.problems(demo.Sight(errors=["eth_call: boom"]), False, expected) == ["ERROR eth_call: boom"]
    # A party must see everything.
    order = (1, "0x" + "11" * 20, "0x" + "00" * 20, "Blue widgets", 250, 1, 1_000)
    full = demo.Sight(code=100, storage=1, orders=(order,), txs=2, receipts=2, logs=1, blocks=2)
    assert demo.problems(full, True, expected) == []
    missing = demo.Sight(code=100, storage=1, orders=(order,), txs=2, receipts=1, logs=0, blocks=2)
    assert demo.problems(missing, True, expected) == [
        "MISSING eth_getTransactionReceipt",
        "MISSING eth_getLogs",
    ]
    assert demo.problems(demo.Sight(), True, expected)[0] == "MISSING eth_getCode"
