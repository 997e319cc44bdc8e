"""The HTTP application: JSON-RPC on POST /, and the node's lifecycle."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .errors import INVALID_REQUEST, LIMIT_EXCEEDED, RpcError
from .gov_rest import router as gov_router
from .jsonrpc import DEFAULT_LIMITS, Limits, handle_body
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .node import Node
from .rate_limit import ClientRateLimiter, RateLimit
from .ws import serve_websocket

DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
REPORT_DATA_PATTERN = r"^0x([0-9a-fA-F]{2}){0,64}$"


def _rpc_error_response(error: RpcError, status: int = 200) -> Response:
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error.to_json()}, status_code=status)


def _client_of(request: Request | WebSocket) -> str:
    return request.client.host if request.client is not None else "unknown"


class _Admission:
    """Charges one client's requests to the limiter; remembers a refusal's Retry-After."""

    def __init__(self, limiter: ClientRateLimiter | None, client: str) -> None:
        self._limiter = limiter
        self._client = client
        self.retry_after: str | None = None

    def __call__(self, cost: int) -> RpcError | None:
        if self._limiter is None:
            return None
        wait = self._limiter.admit(self._client, cost)
        if wait is None:
            return None
        limit = self._limiter.limit
        allowed = f"{limit.requests_per_second:g} requests a second per client, bursts of {limit.burst}"
        if math.isinf(wait):
            self.retry_after = "3600"
            return RpcError(
                LIMIT_EXCEEDED, f"rate limit: a batch larger than the burst never fits ({allowed})"
            )
        self.retry_after = str(max(1, math.ceil(wait)))
        return RpcError(LIMIT_EXCEEDED, f"rate limit exceeded ({allowed}); retry in {wait:.2f} s")


def create_app(
    node: Node,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    limits: Limits | None = None,
    rate_limit: RateLimit | None = None,
) -> FastAPI:
    """A FastAPI app serving `node`; the node starts and stops with the app."""
    limiter = None if rate_limit is None else ClientRateLimiter(rate_limit)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.node = node
        node.start()
        try:
            yield
        finally:
            await node.stop()

    app = FastAPI(title="Conclave", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.post("/")
    async def json_rpc(request: Request) -> Response:
        largest = request.app.state.node.max_request_bytes(max_body_bytes)
        too_large = RpcError(LIMIT_EXCEEDED, f"request body too large: at most {largest} bytes")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > largest:
            return _rpc_error_response(too_large, 413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > largest:
                return _rpc_error_response(too_large, 413)
        if not body:
            return _rpc_error_response(RpcError(INVALID_REQUEST, "empty request body"))
        admission = _Admission(limiter, _client_of(request))
        answer = handle_body(request.app.state.node, bytes(body), limits or DEFAULT_LIMITS, admission)
        if admission.retry_after is not None:
            headers = {"Retry-After": admission.retry_after}
            return Response(answer, status_code=429, media_type="application/json", headers=headers)
        if answer is None:
            return Response(status_code=200)
        return Response(content=answer, media_type="application/json")

    @app.websocket("/")
    @app.websocket("/ws")
    async def json_rpc_websocket(websocket: WebSocket) -> None:
        admission = _Admission(limiter, _client_of(websocket))
        await serve_websocket(websocket, websocket.app.state.node, limits or DEFAULT_LIMITS, admission)

    @app.get("/")
    async def about(request: Request) -> dict[str, object]:
        node: Node = request.app.state.node
        return {
            "name": "Conclave",
            "chainId": node.params.chain_id,
            "latestBlock": node.head.number,
            "rpc": "POST JSON-RPC 2.0 requests to this URL",
        }

    @app.get("/node/status")
    async def node_status(request: Request) -> JSONResponse:
        status = request.app.state.node.status()
        return JSONResponse(status, status_code=200 if status["status"] == "healthy" else 503)

    @app.get("/node/quote")
    async def node_quote(
        request: Request,
        report_data: Annotated[str, Query(alias="reportData", pattern=REPORT_DATA_PATTERN)] = "0x",
    ) -> dict[str, str]:
        """An attestation quote of this node's enclave over `reportData` (hex, at most 64 bytes)."""
        return request.app.state.node.quote(bytes.fromhex(report_data[2:]))  # type: ignore[no-any-return]

    app.include_router(gov_router)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        return Response(request.app.state.node.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    return app
