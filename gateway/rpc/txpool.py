"""The txpool_* methods: what waits in the pool, as geth shows it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_utils import to_checksum_address

from evm_runtime.transactions import DecodedTransaction
from evm_runtime.types import Address

from .. import params as p
from ..hexcodec import quantity
from ..node import Node
from ..views import pending_view
from .registry import Param, rpc

# -- transaction pool -----------------------------------------------------------------

PoolGroup = dict[Address, dict[int, DecodedTransaction]]


def _pool_groups(node: Node) -> tuple[PoolGroup, PoolGroup]:
    """The waiting transactions the caller may see (confidential ones: their audience)."""
    senders = node.pool.senders()
    nonces = dict(zip(senders, node.enclave.account_nonces(senders), strict=True))
    return tuple(  # type: ignore[return-value]
        {
            sender: visible
            for sender, by_nonce in group.items()
            if (visible := {n: tx for n, tx in by_nonce.items() if node.may_see_pending(tx.hash)})
        }
        for group in node.pool.by_readiness(nonces.__getitem__)
    )


def _summary(decoded: DecodedTransaction) -> str:
    """geth's one-line summary: `to: value wei + gas gas × fee cap wei`."""
    tx = decoded.tx
    target = to_checksum_address(tx.to) if tx.to else "contract creation"
    return f"{target}: {tx.value} wei + {tx.gas} gas × {tx.max_fee_per_gas} wei"


def _by_sender(group: PoolGroup, view: Callable[[DecodedTransaction], Any]) -> dict[str, dict[str, Any]]:
    """Keyed as geth keys them: checksummed sender, then the nonce in decimal."""
    return {
        to_checksum_address(sender): {str(nonce): view(tx) for nonce, tx in by_nonce.items()}
        for sender, by_nonce in group.items()
    }


@rpc("txpool_status")
def txpool_status(node: Node) -> dict[str, str]:
    ready, queued = _pool_groups(node)
    return {
        "pending": quantity(sum(map(len, ready.values()))),
        "queued": quantity(sum(map(len, queued.values()))),
    }


@rpc("txpool_content")
def txpool_content(node: Node) -> dict[str, Any]:
    ready, queued = _pool_groups(node)
    return {"pending": _by_sender(ready, pending_view), "queued": _by_sender(queued, pending_view)}


@rpc("txpool_contentFrom", Param("address", p.address))
def txpool_content_from(node: Node, sender: Address) -> dict[str, Any]:
    ready, queued = _pool_groups(node)
    return {
        "pending": {str(nonce): pending_view(tx) for nonce, tx in ready.get(sender, {}).items()},
        "queued": {str(nonce): pending_view(tx) for nonce, tx in queued.get(sender, {}).items()},
    }


@rpc("txpool_inspect")
def txpool_inspect(node: Node) -> dict[str, Any]:
    ready, queued = _pool_groups(node)
    return {"pending": _by_sender(ready, _summary), "queued": _by_sender(queued, _summary)}
