"""Who is asking: the login token of the request being served.

The HTTP and WebSocket handlers set it for the request they serve (from
`Authorization: Bearer …` or the `/rpc/<token>` path); methods that read anything
confidential hand it to the enclave, which alone decides who the token names
(`enclave.auth`) and what that address may see. Anonymous requests carry None.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_token: ContextVar[str | None] = ContextVar("conclave_caller_token", default=None)


def current_token() -> str | None:
    """The login token of the request being served (None: anonymous)."""
    return _token.get()


@contextmanager
def acting_as(token: str | None) -> Iterator[None]:
    """Serve what runs inside as the holder of `token`."""
    reset = _token.set(token)
    try:
        yield
    finally:
        _token.reset(reset)
