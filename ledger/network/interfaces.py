"""The seams of the network: what the transport is handed, and what it offers.

The node plugs in a `Signer` (the enclave's node key: `ledger` never imports `enclave`)
and a `MessageHandler`; the consensus driver talks to a `PeerNetwork`, which `Transport`
implements over TCP and a test may implement in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from evm_runtime.types import Address

Endpoint = tuple[str, int]
"""Where a validator listens: host and port, as governance records them."""


def parse_endpoint(text: str) -> Endpoint | None:
    """`host:port` (an IPv6 host in brackets) as an `Endpoint`; None if `text` is not one."""
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65_536:
        return None
    return host, int(port)


MessageHandler = Callable[[Address, bytes], Awaitable[None] | None]
"""Called with the authenticated sender and the payload of each frame, one at a time per
peer, in the order sent. While an awaitable it returns is pending, that peer's connection
is not read: a slow consumer slows its senders down (and makes them drop, counted)."""


class Signer(Protocol):
    """A validator's node key, held by its enclave.

    The same shape as `ledger.consensus.messages.Signer`, so one object (the enclave's
    `NodeIdentity`, or its client) signs both consensus messages and handshakes.
    """

    @property
    def address(self) -> Address: ...

    def sign_hash(self, message_hash: bytes) -> bytes:
        """A recoverable secp256k1 signature `r ‖ s ‖ v` (v in 0..1 or 27..28) over
        `ledger.signing.validator_digest(message_hash)`."""
        ...


class PeerNetwork(Protocol):
    """Opaque payloads to and from the other validators; never blocks the caller."""

    def send(self, peer: Address, payload: bytes) -> bool:
        """Queue `payload` for `peer`; False if `peer` is not a current validator."""
        ...

    def broadcast(self, payload: bytes) -> int:
        """Queue `payload` for every other validator; how many it was queued for."""
        ...

    def update_peers(self, endpoints: Mapping[Address, Endpoint]) -> None:
        """The new validator set (with where each listens), as governance changed it."""
        ...
