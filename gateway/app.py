"""The HTTP application: JSON-RPC on POST /, and the node's lifecycle.

Who is asking: a request may carry a login token (`/auth/...`, `gateway.auth_rest`) in an
`Authorization: Bearer <token>` header or in its path, for wallets that cannot set headers:
JSON-RPC over HTTP at `/` and `/rpc/<token>`, over WebSocket at `/`, `/ws`, `/rpc/<token>`
and `/ws/<token>`. Header and path may both carry it only if they carry the same token (two
different ones: HTTP 400, WebSocket closed with 1008). The enclave checks the token once
before anything is answered: a malformed, expired or foreign one answers HTTP 401 (a
WebSocket is closed with 1008 and the reason), so the client learns at once to sign in
again; an accepted one is `gateway.caller.current_token()` while the request is served.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from evm_runtime.exceptions import InvalidRequest, NotPermitted, Unauthenticated

from .auth_rest import WWW_AUTHENTICATE
from .auth_rest import router as auth_router
from .caller import acting_as
from .errors import INVALID_REQUEST, LIMIT_EXCEEDED, UNAUTHENTICATED, RpcError
from .gov_rest import router as gov_router
from .jsonrpc import DEFAULT_LIMITS, Limits, handle_body_later
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .node import Node
from .quote_rest import router as quote_router
from .rate_limit import ClientRateLimiter, RateLimit
from .receipt_rest import router as receipt_router
from .recovery_rest import router as recovery_router
from .reopening import Reopenings
from .ws import serve_websocket

DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
QUOTE_PATTERN = r"^0x([0-9a-fA-F]{2}){1,4096}$"


def _rpc_error_response(error: RpcError, status: int = 200) -> Response:
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error.to_json()}, status_code=status)


def _client_of(request: Request | WebSocket) -> str:
    return request.client.host if request.client is not None else "unknown"


POLICY_VIOLATION = 1008
"""The WebSocket close code for a refused login token."""
MAX_CLOSE_REASON_BYTES = 123


class SecretsRequest(BaseModel):
    quote: Annotated[str, Field(pattern=QUOTE_PATTERN)]
    """An attestation quote of the asking validator's enclave, in hex."""


class Refusal(BaseModel):
    detail: str


class _TokenRefused(Exception):
    """A request whose login token is refused, and how to answer it."""

    def __init__(self, status: int, error: RpcError) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error

    def response(self) -> Response:
        response = _rpc_error_response(self.error, self.status)
        if self.status == 401:
            response.headers.update(WWW_AUTHENTICATE)
        return response

    def close_reason(self) -> str:
        """The message, cut to what a WebSocket close frame holds."""
        return self.error.message.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


def _login_token(connection: HTTPConnection) -> str | None:
    """The login token `connection` carries, once the enclave has accepted it (None: anonymous);
    `_TokenRefused` if it is refused."""
    in_path: str | None = connection.path_params.get("token")
    in_header: str | None = None
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _TokenRefused(
                401,
                RpcError(
                    UNAUTHENTICATED,
                    'the Authorization header takes "Bearer <token>", a token from /auth/login',
                ),
            )
        in_header = value.strip()
    if in_header is not None and in_path is not None and in_header != in_path:
        raise _TokenRefused(
            400,
            RpcError(
                INVALID_REQUEST,
                "two different login tokens, in the Authorization header and in the URL: send one",
            ),
        )
    token = in_header if in_header is not None else in_path
    if token is None:
        return None
    try:
        connection.app.state.node.enclave.viewer(token)
    except Unauthenticated as refused:
        raise _TokenRefused(401, RpcError(UNAUTHENTICATED, str(refused))) from None
    return token


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
        app.state.reopenings = Reopenings(node)  # a recovered network's reopening
        node.start()
        try:
            yield
        finally:
            await node.stop()

    app = FastAPI(title="Conclave", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.post("/")
    @app.post("/rpc/{token}", include_in_schema=False)
    async def json_rpc(request: Request) -> Response:
        try:
            token = _login_token(request)
        except _TokenRefused as refused:
            return refused.response()
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
        with acting_as(token):
            answer = await handle_body_later(
                request.app.state.node, bytes(body), limits or DEFAULT_LIMITS, admission
            )
        if admission.retry_after is not None:
            headers = {"Retry-After": admission.retry_after}
            return Response(answer, status_code=429, media_type="application/json", headers=headers)
        if answer is None:
            return Response(status_code=200)
        return Response(content=answer, media_type="application/json")

    @app.websocket("/")
    @app.websocket("/ws")
    @app.websocket("/rpc/{token}")
    @app.websocket("/ws/{token}")
    async def json_rpc_websocket(websocket: WebSocket) -> None:
        try:
            token = _login_token(websocket)
        except _TokenRefused as refused:
            await websocket.accept()
            await websocket.close(POLICY_VIOLATION, refused.close_reason())
            return
        admission = _Admission(limiter, _client_of(websocket))
        await serve_websocket(
            websocket, websocket.app.state.node, limits or DEFAULT_LIMITS, admission, token=token
        )

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

    @app.post(
        "/node/ledger-secrets",
        responses={
            400: {"model": Refusal, "description": "not a quote"},
            403: {"model": Refusal, "description": "the quote is not a validator's, or not for this"},
        },
    )
    async def ledger_secrets(request: Request, asked: SecretsRequest) -> dict[str, str]:
        """The network's ledger secrets, wrapped for the validator whose quote asks (report data
        `enclave.secret_transfer.transfer_report_data(chain id)`): only that validator's
        enclave opens the answer (`docs/consensus.md`, joining)."""
        node: Node = request.app.state.node
        try:
            wrapped = node.enclave.share_ledger_secrets(bytes.fromhex(asked.quote[2:]))
        except NotPermitted as refused:
            raise HTTPException(403, str(refused)) from None
        except InvalidRequest as refused:
            raise HTTPException(400, str(refused)) from None
        return {"wrapped": "0x" + wrapped.hex()}

    app.include_router(gov_router)
    app.include_router(auth_router)
    app.include_router(receipt_router)
    app.include_router(quote_router)
    app.include_router(recovery_router)  # disaster recovery (docs/recovery.md)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        return Response(request.app.state.node.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    return app
