"""The JSON-RPC methods, one module a namespace; importing this package registers them all."""

from . import (
    blocks,
    chain_info,
    confidential,
    consensus,
    debug_trace,
    dev_chain,
    discover,
    logs,
    mining,
    network,
    proofs,
    raw,
    signing,
    simulate,
    state,
    txpool,
)
from .registry import METHODS, Method, Param, rpc

__all__ = [
    "METHODS",
    "Method",
    "Param",
    "blocks",
    "chain_info",
    "confidential",
    "consensus",
    "debug_trace",
    "dev_chain",
    "discover",
    "logs",
    "mining",
    "network",
    "proofs",
    "raw",
    "rpc",
    "signing",
    "simulate",
    "state",
    "txpool",
]
