"""The JSON-RPC methods, one module a namespace; importing this package registers them all."""

from . import blocks, dev_chain, discover, logs, mining, network, raw, signing, state, txpool
from .registry import METHODS, Method, Param, rpc

__all__ = [
    "METHODS",
    "Method",
    "Param",
    "blocks",
    "dev_chain",
    "discover",
    "logs",
    "mining",
    "network",
    "raw",
    "rpc",
    "signing",
    "state",
    "txpool",
]
