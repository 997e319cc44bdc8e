"""Build `gateway/openrpc/execution-apis.json` from the vendored execution-apis spec.

    python scripts/build_openrpc.py          # write the file
    python scripts/build_openrpc.py --check  # exit 1 if the committed file is stale

The node serves its OpenRPC document (rpc.discover) from that file: the spec's method
entries (summary, params, result) and the component schemas they refer to. Examples and
error groups are left out to keep it small.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_SOURCE = REPO_ROOT / "tests" / "spec" / "execution-apis" / "src"
OUTPUT = REPO_ROOT / "gateway" / "openrpc" / "execution-apis.json"
KEPT_METHOD_KEYS = ("name", "summary", "description", "params", "result")


def build() -> str:
    methods: list[dict[str, Any]] = []
    for path in sorted(SPEC_SOURCE.glob("*/*.yaml")):
        if path.parent.name in ("schemas", "error-groups"):
            continue
        for method in yaml.safe_load(path.read_text()) or []:
            methods.append({key: method[key] for key in KEPT_METHOD_KEYS if key in method})
    schemas: dict[str, Any] = {}
    for path in sorted((SPEC_SOURCE / "schemas").glob("*.yaml")):
        schemas.update(yaml.safe_load(path.read_text()) or {})
    document = {"methods": sorted(methods, key=lambda m: m["name"]), "components": {"schemas": schemas}}
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if the committed file differs")
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(
                f"{OUTPUT.relative_to(REPO_ROOT)} is stale: run python scripts/build_openrpc.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
