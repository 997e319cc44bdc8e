"""The JSON-RPC methods, one module a namespace; importing this package registers them all."""

from . import blocks, logs, mining, network, state, txpool
from .registry import METHODS, Method, Param, rpc

__all__ = ["METHODS", "Method", "Param", "blocks", "logs", "mining", "network", "rpc", "state", "txpool"]
