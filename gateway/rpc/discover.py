"""rpc.discover: the OpenRPC document of the methods this node serves.

Methods of the execution-apis spec are described as the spec describes them (from
`gateway/openrpc/execution-apis.json`, built by `scripts/build_openrpc.py`); the others
(txpool_inspect, net_*, the dev-chain methods, ...) by their parameter names. Dev-only
methods are listed only by a dev node; eth_subscribe and eth_unsubscribe, which need a
WebSocket, are listed with that said.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ..node import VERSION, Node
from ..pubsub import SUBSCRIPTION_METHODS
from .registry import METHODS, Method, rpc

OPENRPC_VERSION = "1.2.6"


@cache
def _spec() -> dict[str, Any]:
    text = resources.files("gateway").joinpath("openrpc", "execution-apis.json").read_text()
    return dict(json.loads(text))


def _described(method: Method) -> dict[str, Any]:
    return {
        "name": method.name,
        "params": [{"name": param.name, "required": param.required, "schema": {}} for param in method.params],
        "result": {"name": "result", "schema": {}},
    }


def _websocket_only(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "WebSocket connections only (ws://host:port/ or /ws).",
        "params": [{"name": "params", "schema": {"type": "array"}}],
        "result": {"name": "result", "schema": {}},
    }


@rpc("rpc.discover")
def rpc_discover(node: Node) -> dict[str, Any]:
    spec = _spec()
    by_name = {entry["name"]: entry for entry in spec["methods"]}
    served = sorted(name for name, method in METHODS.items() if node.config.dev_mode or not method.dev_only)
    methods = [by_name.get(name) or _described(METHODS[name]) for name in served]
    methods += [_websocket_only(name) for name in SUBSCRIPTION_METHODS]
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {"title": "Conclave JSON-RPC", "version": VERSION},
        "methods": methods,
        "components": spec["components"],
    }
