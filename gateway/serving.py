"""Serving a node's JSON-RPC until SIGINT or SIGTERM: what `conclave dev` and `conclave node`
share (`gateway.cli`, `gateway.node_cli`)."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .rate_limit import RateLimit

if TYPE_CHECKING:
    from .node import Node, NodeConfig


@dataclass(frozen=True)
class ServeOptions:
    """Where JSON-RPC listens and what one client may ask of it."""

    host: str
    port: int
    """0: a free port."""
    max_request_mib: int = 5
    max_batch: int = 1_000
    rate_limit: float | None = None
    """JSON-RPC requests a second per client address, bursts of twice that (None: no limit)."""
    log_level: str = "info"
    port_advice: str = "pass another --port, or --port 0 for a free one"
    """What to do when the port is taken."""

    def rate_limiter(self) -> RateLimit | None:
        if self.rate_limit is None:
            return None
        return RateLimit(requests_per_second=self.rate_limit, burst=max(1, round(2 * self.rate_limit)))


def serve(config: NodeConfig, options: ServeOptions, announce: Callable[[Node, str], None]) -> int:
    """Start the node of `config`, tell `announce` its URL, serve until stopped; the exit status
    (2: the port is taken, the database holds another chain, or the keys are other code's)."""
    # Imported here, not at the top: `conclave --help` should not wait for py-evm.
    import uvicorn

    from enclave.keystore import KeystoreLocked

    from .app import create_app
    from .jsonrpc import Limits
    from .node import ChainMismatch, Node

    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        listener = socket.create_server((options.host, options.port), backlog=2048)
    except OSError as exc:
        print(
            f"error: cannot listen on {options.host}:{options.port} ({exc.strerror}): {options.port_advice}",
            file=sys.stderr,
        )
        return 2
    try:
        node = Node(config)
    except (ChainMismatch, KeystoreLocked) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    port = listener.getsockname()[1]
    announce(node, f"http://{options.host}:{port}")
    max_body = options.max_request_mib * 1024 * 1024
    app = create_app(
        node,
        max_body_bytes=max_body,
        limits=Limits(max_batch=options.max_batch),
        rate_limit=options.rate_limiter(),
    )
    server_config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", ws_max_size=max_body
    )
    server = uvicorn.Server(server_config)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handlers it found; these make that a clean exit with status 0.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    server.run(sockets=[listener])
    return 0
