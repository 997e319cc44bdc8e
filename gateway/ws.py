"""JSON-RPC over WebSocket on the HTTP port (`/` and `/ws`): every method, and subscriptions.

A connection is served as the holder of the login token it opened with (`/rpc/<token>`,
`/ws/<token>` or `Authorization: Bearer`, checked by `gateway.app`): each of its messages
is answered with that token as `gateway.caller.current_token()`, and its `Subscriber`
keeps it for the notifications pushed later.

Requests and batches are answered as over HTTP (`gateway.jsonrpc`), in order, through the
connection's bounded queue, which notifications share (`gateway.pubsub`). A connection
that cannot keep up, so that its queue fills, is closed with code 1013 and a reason; the
node does not wait for it. Messages are limited in size like HTTP bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import WebSocket

from . import params as p
from .caller import acting_as
from .errors import INVALID_PARAMS, INVALID_REQUEST, LIMIT_EXCEEDED, PARSE_ERROR, RpcError
from .jsonrpc import Admission, Limits, answer_payload, handle_request, parse_json
from .node import Node
from .pubsub import KINDS, LOGS, NEW_PENDING, SUBSCRIPTION_METHODS, Subscriber

log = logging.getLogger(__name__)

TOO_SLOW = 1013

Json = Any


def _error(request_id: Json, error: RpcError) -> Json:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def _subscribe(node: Node, subscriber: Subscriber, params: Json) -> str:
    if not isinstance(params, list) or not params:
        raise RpcError(INVALID_PARAMS, f"expected [kind, options?] with kind one of {', '.join(KINDS)}")
    kind, options = params[0], params[1:]
    if kind not in KINDS:
        raise RpcError(
            INVALID_PARAMS, f"unknown subscription type {str(kind)[:40]!r}: one of {', '.join(KINDS)}"
        )
    if len(options) > 1:
        raise RpcError(INVALID_PARAMS, f"too many arguments for a {kind} subscription")
    criteria, full = None, False
    if kind == LOGS and options and options[0] is not None:
        try:
            criteria = p.log_filter(options[0])
        except (ValueError, TypeError) as exc:
            raise RpcError(INVALID_PARAMS, f"invalid logs filter: {exc}") from None
        if criteria.from_block or criteria.to_block or criteria.block_hash:
            raise RpcError(INVALID_PARAMS, "a logs subscription takes address and topics only (new logs)")
    elif kind == NEW_PENDING and options:
        if not isinstance(options[0], bool):
            raise RpcError(INVALID_PARAMS, "newPendingTransactions takes true for whole transactions")
        full = options[0]
    elif options:
        raise RpcError(INVALID_PARAMS, f"a {kind} subscription takes no options")
    try:
        return node.pubsub.subscribe(subscriber, kind, criteria, full)
    except OverflowError as exc:
        raise RpcError(LIMIT_EXCEEDED, str(exc)) from None


def _unsubscribe(subscriber: Subscriber, params: Json) -> bool:
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], str):
        raise RpcError(INVALID_PARAMS, "expected [subscription id]")
    return subscriber.subscriptions.pop(params[0], None) is not None


def _handle(node: Node, subscriber: Subscriber, request: Json) -> Json | None:
    if not (isinstance(request, dict) and request.get("method") in SUBSCRIPTION_METHODS):
        return handle_request(node, request)
    request_id = request.get("id")
    if request.get("jsonrpc") != "2.0":
        return _error(request_id, RpcError(INVALID_REQUEST, 'the "jsonrpc" member must be "2.0"'))
    try:
        if request["method"] == "eth_subscribe":
            result: Json = _subscribe(node, subscriber, request.get("params"))
        else:
            result = _unsubscribe(subscriber, request.get("params"))
    except RpcError as error:
        return _error(request_id, error)
    return None if "id" not in request else {"jsonrpc": "2.0", "id": request_id, "result": result}


def answer_message(
    node: Node, subscriber: Subscriber, text: str | bytes, limits: Limits, admit: Admission | None
) -> Json | None:
    """The answer to one WebSocket message (a request or a batch); None if none is owed."""
    try:
        payload = parse_json(text.encode() if isinstance(text, str) else text)
    except ValueError:
        return _error(None, RpcError(PARSE_ERROR, "parse error: the message is not valid JSON"))
    return answer_payload(node, payload, limits, admit, lambda node, item: _handle(node, subscriber, item))


async def _write(websocket: WebSocket, subscriber: Subscriber) -> None:
    while True:
        text = await subscriber.queue.get()
        await websocket.send_text(text)
        subscriber.sent(text)


async def _read(
    websocket: WebSocket, node: Node, subscriber: Subscriber, limits: Limits, admit: Admission | None
) -> None:
    while not subscriber.overflowed:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text") if message.get("text") is not None else message.get("bytes", b"")
        with acting_as(subscriber.token):
            answer = answer_message(node, subscriber, text, limits, admit)
        if answer is not None:
            subscriber.send(answer)


async def serve_websocket(
    websocket: WebSocket, node: Node, limits: Limits, admit: Admission | None, token: str | None = None
) -> None:
    """Serve one connection, as the holder of `token`, until the client leaves or falls too far behind."""
    await websocket.accept()
    subscriber = Subscriber(token=token)
    node.pubsub.connect(subscriber)
    writer = asyncio.create_task(_write(websocket, subscriber))
    reader = asyncio.create_task(_read(websocket, node, subscriber, limits, admit))
    overflow = asyncio.create_task(subscriber.overflow.wait())
    tasks = (writer, reader, overflow)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        node.pubsub.disconnect(subscriber)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # a disconnect ends them all
        if subscriber.overflowed:
            log.info(
                "closing a WebSocket client that fell behind (%d bytes waiting)", subscriber.queued_bytes
            )
            with contextlib.suppress(Exception):  # the server aborts the connection if it must
                await websocket.close(TOO_SLOW, f"too slow: {subscriber.queue.qsize()} messages waiting")
