"""JSON-RPC 2.0 dispatch: envelopes, batches, notifications and errors.

Every request gets exactly one answer object (none for a notification); a batch gets an
array of them in request order. Nothing a client sends can make this raise: malformed
input is answered with the matching JSON-RPC error.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from evm_runtime.exceptions import ConclaveError

from .errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
    to_rpc_error,
)
from .node import Node
from .rpc import METHODS, Method

log = logging.getLogger(__name__)

Json = Any

MAX_JSON_DEPTH = 1_000
"""The recursion limit while parsing a body: nesting deeper than about this is refused."""


@dataclass(frozen=True)
class Limits:
    max_batch: int = 1_000


DEFAULT_LIMITS = Limits()


def _error(request_id: Json, error: RpcError) -> dict[str, Json]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def _parse_params(method: Method, raw: Json) -> list[Json]:
    if raw is None:
        raw = []
    if isinstance(raw, dict):
        unknown = set(raw) - {param.name for param in method.params}
        if unknown:
            raise RpcError(INVALID_PARAMS, f"unknown parameter(s) {', '.join(sorted(unknown))}")
        raw = [raw.get(param.name) for param in method.params]
        while raw and raw[-1] is None:
            raw.pop()
    if not isinstance(raw, list):
        raise RpcError(INVALID_REQUEST, "params must be an array or an object")
    if len(raw) > len(method.params):
        raise RpcError(
            INVALID_PARAMS,
            f"too many arguments, want at most {len(method.params)}, got {len(raw)}",
        )
    parsed = []
    for position, param in enumerate(method.params):
        value = raw[position] if position < len(raw) else None
        if value is None:
            if param.required:
                raise RpcError(
                    INVALID_PARAMS,
                    f"missing value for required argument {position} ({param.name})",
                )
            parsed.append(param.default)
            continue
        try:
            parsed.append(param.parse(value))
        except (ValueError, TypeError, OverflowError) as exc:
            raise RpcError(INVALID_PARAMS, f"invalid argument {position} ({param.name}): {exc}") from None
    return parsed


def _valid_id(request_id: Json) -> bool:
    if request_id is None or isinstance(request_id, str):
        return True
    if isinstance(request_id, bool):
        return False
    return isinstance(request_id, int) or (isinstance(request_id, float) and math.isfinite(request_id))


@contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    """Lower the interpreter's recursion limit while parsing untrusted JSON.

    py-evm raises the limit to 100,000 for deep EVM calls; the C JSON parser honours it,
    so a body of deeply nested brackets would overflow the C stack and kill the process.
    """
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def _reject_constant(name: str) -> Json:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Json:
    """Parse a request body; raises ValueError for invalid or too deeply nested JSON."""
    try:
        with _recursion_limit(MAX_JSON_DEPTH):
            return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


@dataclass(frozen=True)
class _Envelope:
    """A request object whose envelope is valid: what its answer needs."""

    id: Json
    notification: bool
    name: str
    started: float


def _open(request: Json) -> _Envelope | dict[str, Json]:
    """The envelope of `request`, or the error answer of an invalid one."""
    if not isinstance(request, dict):
        return _error(None, RpcError(INVALID_REQUEST, "a request must be a JSON object"))
    request_id = request.get("id")
    if not _valid_id(request_id):
        return _error(None, RpcError(INVALID_REQUEST, '"id" must be a string, a number or null'))
    if request.get("jsonrpc") != "2.0":
        return _error(request_id, RpcError(INVALID_REQUEST, 'the "jsonrpc" member must be "2.0"'))
    name = request.get("method")
    if not isinstance(name, str):
        return _error(request_id, RpcError(INVALID_REQUEST, 'the "method" member must be a string'))
    return _Envelope(request_id, "id" not in request, name, time.perf_counter())


def _served(node: Node, name: str) -> Method | None:
    """The method `name` names, if this node serves it (dev methods on a dev node only)."""
    method = METHODS.get(name)
    return None if method is None or (method.dev_only and not node.config.dev_mode) else method


def _method(node: Node, name: str) -> Method:
    method = _served(node, name)
    if method is None:
        raise RpcError(METHOD_NOT_FOUND, f"the method {name[:100]} does not exist/is not available")
    return method


def _close(node: Node, envelope: _Envelope, result: Json, error: Exception | None) -> dict[str, Json] | None:
    """The answer to a request that returned `result` or raised `error`, and its metrics
    (by method name only for a method the node serves: the label stays bounded)."""
    request_id, name = envelope.id, envelope.name
    if isinstance(error, RpcError):
        response = _error(request_id, error)
    elif isinstance(error, ConclaveError):
        response = _error(request_id, to_rpc_error(error))
    elif error is not None:
        log.error("internal error in %s", name, exc_info=error)
        response = _error(request_id, RpcError(INTERNAL_ERROR, f"internal error in {name}"))
    else:
        response = {"jsonrpc": "2.0", "id": request_id, "result": result}
    error_code = response["error"]["code"] if "error" in response else None
    served = name if _served(node, name) is not None else None
    node.metrics.observe_rpc(served, time.perf_counter() - envelope.started, error_code)
    return None if envelope.notification else response


def handle_request(node: Node, request: Json) -> dict[str, Json] | None:
    """Answer one request object; None for a notification."""
    envelope = _open(request)
    if not isinstance(envelope, _Envelope):
        return envelope
    try:
        method = _method(node, envelope.name)
        result = method.handler(node, *_parse_params(method, request.get("params")))
    except Exception as error:
        return _close(node, envelope, None, error)
    return _close(node, envelope, result, None)


async def handle_request_later(node: Node, request: Json) -> dict[str, Json] | None:
    """`handle_request` on the event loop: a method with a form to await (`Method.later`,
    such as eth_sendRawTransaction) is awaited, so the loop serves others meanwhile."""
    envelope = _open(request)
    if not isinstance(envelope, _Envelope):
        return envelope
    try:
        method = _method(node, envelope.name)
        args = _parse_params(method, request.get("params"))
        result = method.handler(node, *args) if method.later is None else await method.later(node, *args)
    except Exception as error:
        return _close(node, envelope, None, error)
    return _close(node, envelope, result, None)


Admission = Callable[[int], RpcError | None]
"""Asked with the number of requests in a body before any is handled; an error refuses them."""


def _refused(payload: Json, limits: Limits, admit: Admission | None) -> dict[str, Json] | None:
    """The error answer to a whole payload (an empty or too large batch, or refused by
    `admit`), or None to answer its requests."""
    if isinstance(payload, list):
        if not payload:
            return _error(None, RpcError(INVALID_REQUEST, "empty batch"))
        if len(payload) > limits.max_batch:
            message = f"batch too large: {len(payload)} requests, at most {limits.max_batch}"
            return _error(None, RpcError(LIMIT_EXCEEDED, message))
    refusal = None if admit is None else admit(len(payload) if isinstance(payload, list) else 1)
    return None if refusal is None else _error(None, refusal)


def answer_payload(
    node: Node,
    payload: Json,
    limits: Limits = DEFAULT_LIMITS,
    admit: Admission | None = None,
    handle: Callable[[Node, Json], Json | None] = handle_request,
) -> Json | None:
    """The answer to a parsed request or batch, each request answered by `handle`."""
    refused = _refused(payload, limits, admit)
    if refused is not None:
        return refused
    if isinstance(payload, list):
        answers = [answer for answer in (handle(node, item) for item in payload) if answer is not None]
        return answers or None
    return handle(node, payload)


def handle_body(
    node: Node, body: bytes, limits: Limits = DEFAULT_LIMITS, admit: Admission | None = None
) -> bytes | None:
    """Answer an HTTP body holding a request or a batch; None if nothing is owed."""
    try:
        payload = parse_json(body)
    except ValueError:
        return _dump(_error(None, RpcError(PARSE_ERROR, "parse error: the body is not valid JSON")))
    answer = answer_payload(node, payload, limits, admit)
    return None if answer is None else _dump(answer)


async def handle_body_later(
    node: Node, body: bytes, limits: Limits = DEFAULT_LIMITS, admit: Admission | None = None
) -> bytes | None:
    """`handle_body` on the event loop (`handle_request_later`). A batch's requests are
    still answered one after the other, each after the one before it took effect."""
    try:
        payload = parse_json(body)
    except ValueError:
        return _dump(_error(None, RpcError(PARSE_ERROR, "parse error: the body is not valid JSON")))
    answer = _refused(payload, limits, admit)
    if answer is None and isinstance(payload, list):
        answers = [await handle_request_later(node, item) for item in payload]
        answer = [answer for answer in answers if answer is not None] or None
    elif answer is None:
        answer = await handle_request_later(node, payload)
    return None if answer is None else _dump(answer)


def _dump(value: Json) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
