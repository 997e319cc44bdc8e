"""Compiled Solidity artefacts for tests.

Artefacts are produced by ``npm run compile`` (``scripts/compile-contracts.mjs``)
and committed under ``examples/contracts/build/`` and ``tests/contracts/build/``.
Each is a JSON object with ``contractName``, ``sourceName``, ``abi``,
``bytecode`` (creation code, 0x-hex), ``deployedBytecode`` and ``compiler``.

Usage::

    from tests.support.artifacts import load_artifact

    probe = load_artifact("Probe")
    contract = w3.eth.contract(abi=probe["abi"], bytecode=probe["bytecode"])
"""

from __future__ import annotations

import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACT_DIRS: tuple[Path, ...] = (
    REPO_ROOT / "examples" / "contracts" / "build",
    REPO_ROOT / "tests" / "contracts" / "build",
)


class ArtifactNotFoundError(FileNotFoundError):
    """Raised when no compiled artefact exists for a contract name."""


def artifact_path(name: str) -> Path:
    """Return the path of ``<name>.json`` in the first artefact folder that has it."""
    if not name or "/" in name or "\\" in name or name.endswith(".json"):
        raise ValueError(f"expected a bare contract name such as 'Probe', got {name!r}")
    for directory in ARTIFACT_DIRS:
        candidate = directory / f"{name}.json"
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d.relative_to(REPO_ROOT)) for d in ARTIFACT_DIRS)
    available = sorted(p.stem for d in ARTIFACT_DIRS if d.is_dir() for p in d.glob("*.json"))
    raise ArtifactNotFoundError(
        f"no compiled artefact for contract {name!r} (looked for {name}.json in {searched}); "
        f"available: {', '.join(available) or 'none'}. "
        "Run `npm ci && npm run compile` at the repository root to (re)build them."
    )


def load_artifact(name: str) -> dict:
    """Load the compiled artefact of contract ``name`` (e.g. ``"ConclaveToken"``, ``"Probe"``)."""
    path = artifact_path(name)
    with path.open(encoding="utf-8") as fh:
        artifact = json.load(fh)
    if artifact.get("contractName") != name:
        raise ValueError(f"{path} holds contract {artifact.get('contractName')!r}, expected {name!r}")
    return artifact
