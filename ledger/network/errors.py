"""What goes wrong between validators, as exceptions.

    TransportError
    ├── HandshakeRefused   a connection was not authenticated (its `reason` is counted)
    ├── FrameRefused       an authenticated connection sent a frame that must not be read
    └── PayloadTooLarge    `send` / `broadcast` was given more than a frame may carry

`HandshakeRefused` and `FrameRefused` never leave the transport: it counts them, logs
them and closes the connection. `PayloadTooLarge` is the caller's mistake and is raised.
"""

from __future__ import annotations


class TransportError(Exception):
    """The root of the transport's exceptions."""


class HandshakeRefused(TransportError):
    """The peer did not prove it is the validator it must be; `reason` names why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class FrameRefused(TransportError):
    """A frame failed its checks (size, sequence, authentication tag); `reason` names which."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class PayloadTooLarge(TransportError, ValueError):
    """A payload above the transport's `max_payload`."""
