"""The JSON-RPC methods, one module a namespace; importing this package registers them all."""

from . import blocks, logs, network, state, txpool
from .registry import METHODS, Method, Param, rpc

__all__ = ["METHODS", "Method", "Param", "blocks", "logs", "network", "rpc", "state", "txpool"]
