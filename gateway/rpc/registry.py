"""The method table: a name, a handler and the parsers of its parameters.

Handlers receive the node and parsed parameters and return JSON-ready values. They never
parse hex or build error objects themselves: parameters are parsed by the table, domain
errors are mapped in `gateway.errors`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from .. import params as p


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    parse: p.Parser
    required: bool = True
    default: Any = None


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    handler: Callable[..., Any]
    params: tuple[Param, ...]
    dev_only: bool = False
    """Served by `conclave dev` only; a production node answers -32601."""
    later: Callable[..., Awaitable[Any]] | None = None
    """The same method for a caller on the event loop (`awaited`), if it has such a form."""


METHODS: dict[str, Method] = {}


def rpc(
    name: str, *params: Param, dev_only: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated handler as the method `name`."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        if name in METHODS:
            raise ValueError(f"method {name} registered twice")
        METHODS[name] = Method(name, handler, params, dev_only)
        return handler

    return register


def awaited(name: str) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Register the decorated coroutine function as the form of method `name` that the
    HTTP handler awaits (`gateway.jsonrpc.handle_body_later`): same parameters, same
    answer, but the event loop may serve other requests while it waits."""

    def register(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        METHODS[name] = replace(METHODS[name], later=handler)
        return handler

    return register


LATEST = p.BlockRef(tag="latest")
BLOCK = Param("block", p.block_ref, required=False, default=LATEST)
