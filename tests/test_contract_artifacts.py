"""The committed contract artefacts must match what their Solidity sources compile to."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.artifacts import load_artifact

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPILE_SCRIPT = REPO_ROOT / "scripts" / "compile-contracts.mjs"


def test_artifacts_match_sources() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (`node`) is not on PATH; it is needed to compile the Solidity sources.")
    if not (REPO_ROOT / "node_modules" / "solc" / "package.json").is_file():
        pytest.fail("node_modules is missing (no solc-js): run `npm ci` at the repository root first.")
    proc = subprocess.run(
        [node, str(COMPILE_SCRIPT), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, (
        f"`node scripts/compile-contracts.mjs --check` exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


@pytest.mark.parametrize("name", ["ConclaveToken", "Probe", "ProbeChild"])
def test_load_artifact(name: str) -> None:
    artifact = load_artifact(name)
    assert artifact["contractName"] == name
    assert artifact["bytecode"].startswith("0x") and len(artifact["bytecode"]) > 2
    assert artifact["deployedBytecode"].startswith("0x") and len(artifact["deployedBytecode"]) > 2
    assert artifact["compiler"]["settings"]["evmVersion"] == "prague"
    assert isinstance(artifact["abi"], list) and artifact["abi"]


def test_load_artifact_missing_names_the_fix() -> None:
    with pytest.raises(FileNotFoundError, match="npm run compile"):
        load_artifact("NoSuchContract")
