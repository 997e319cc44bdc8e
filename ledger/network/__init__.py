"""The node-to-node transport: authenticated, bounded, self-healing connections.

`interfaces` holds the seams (`Signer`, the enclave's node key; `MessageHandler`;
`PeerNetwork`, what the consensus driver uses); `handshake` the mutual authentication
and key agreement and `frames` the sealed, sequence-numbered framing, both without I/O;
`transport` the asyncio `Transport` over TCP. `docs/consensus.md` ("Transport")
describes the design and its threat model.
"""

from .errors import FrameRefused, HandshakeRefused, PayloadTooLarge, TransportError
from .interfaces import Endpoint, MessageHandler, PeerNetwork, Signer, parse_endpoint
from .transport import PeerStats, Transport, TransportConfig, TransportStats

__all__ = [
    "Endpoint",
    "FrameRefused",
    "HandshakeRefused",
    "MessageHandler",
    "PayloadTooLarge",
    "PeerNetwork",
    "PeerStats",
    "Signer",
    "Transport",
    "TransportConfig",
    "TransportStats",
    "TransportError",
    "parse_endpoint",
]
