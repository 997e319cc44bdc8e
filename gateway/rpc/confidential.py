"""Sending confidential transactions (the conclave_ namespace).

`conclave_sendRawPrivateTransaction(rawTx, {"privateFor": [addresses]})` admits an
ordinary signed transaction as confidential to its sender and `privateFor`: a contract it
creates is confidential to them (`evm_runtime.confidential`). The request must be signed
in as the transaction's sender (EIP-4361 token), so no one else can widen who sees it.
An ordinary `eth_sendRawTransaction` to a confidential contract by one of its parties is
confidential already: wallets need nothing more.
"""

from __future__ import annotations

from typing import Any

from evm_runtime.confidential import MAX_PARTIES
from evm_runtime.types import Address

from .. import params as p
from ..hexcodec import data
from ..node import Node
from .registry import Param, awaited, rpc


def private_options(value: Any) -> tuple[Address, ...]:
    """`{"privateFor": [address, …]}` → the addresses (at least one, at most MAX_PARTIES)."""
    if not isinstance(value, dict):
        raise ValueError('expected an object {"privateFor": [addresses]}')
    unknown = set(value) - {"privateFor"}
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(sorted(map(str, unknown)))}: only privateFor is known"
        )
    parties = value.get("privateFor")
    if not isinstance(parties, list) or not parties:
        raise ValueError("privateFor must be a non-empty array of addresses")
    if len(parties) > MAX_PARTIES:
        raise ValueError(f"privateFor names {len(parties)} addresses; at most {MAX_PARTIES}")
    return tuple(p.address(party) for party in parties)


@rpc(
    "conclave_sendRawPrivateTransaction",
    Param("transaction", p.data),
    Param("options", private_options),
)
def conclave_send_raw_private_transaction(node: Node, raw: bytes, private_for: tuple[Address, ...]) -> str:
    return data(node.send_raw_transaction(raw, private_for))


@awaited("conclave_sendRawPrivateTransaction")
async def conclave_send_raw_private_transaction_later(
    node: Node, raw: bytes, private_for: tuple[Address, ...]
) -> str:
    return data(await node.send_raw_transaction_later(raw, private_for))
