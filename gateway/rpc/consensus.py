"""qbft_*: the consensus seen from outside, as Besu's QBFT methods show it; conclave_*: the
round state and a block's commit certificate.

The validators of block N are those governance named after block N - 1 (genesis names
those of block 1), but a reopening block's are those it installs (docs/recovery.md);
block 0 is decided by no one, and shows genesis's. A block's proposer
is the one of its height and its certificate's round (`ledger.consensus.qbft.proposer_of`).
Validator votes are governance proposals (`conclave gov`), so Besu's
qbft_proposeValidatorVote and qbft_discardValidatorVote are not served.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from evm_runtime.exceptions import InvalidRequest, NotFound
from evm_runtime.types import Address
from ledger.consensus.messages import certificate_signers, decode_certificate, verify_certificate
from ledger.consensus.qbft import proposer_of

from .. import params as p
from ..hexcodec import data, quantity
from ..node import Node
from .registry import Param, rpc

MAX_METRICS_BLOCKS = 10_000
"""The widest block range qbft_getSignerMetrics reads."""


def _validators_deciding(node: Node, number: int) -> tuple[Address, ...]:
    """The validators that decided block `number`: those governance named after its parent,
    or, for a reopening block (docs/recovery.md), those it installs (its certificate says
    which)."""
    before = _named(node, max(number - 1, 0))
    block, encoded = node.store.block_by_number(number), node.store.certificate(number)
    if number == 0 or block is None or encoded is None:
        return before
    certificate = decode_certificate(encoded)
    if verify_certificate(block.hash, certificate, before):
        return before
    after = _named(node, number)
    return after if verify_certificate(block.hash, certificate, after) else before


def _named(node: Node, number: int) -> tuple[Address, ...]:
    named = node.enclave.validators(number)
    return tuple(sorted(named)) if named else (node.address,)


def _addresses(validators: tuple[Address, ...]) -> list[str]:
    return [to_checksum_address(validator) for validator in validators]


@rpc("qbft_getValidatorsByBlockNumber", Param("block", p.block_number_or_tag))
def qbft_get_validators_by_block_number(node: Node, ref: p.BlockRef) -> list[str]:
    return _addresses(_validators_deciding(node, node.block(ref).number))


@rpc("qbft_getValidatorsByBlockHash", Param("hash", p.hash32))
def qbft_get_validators_by_block_hash(node: Node, block_hash: bytes) -> list[str]:
    block = node.store.block_by_hash(block_hash)
    if block is None:
        raise NotFound(f"block 0x{block_hash.hex()} not found")
    return _addresses(_validators_deciding(node, block.number))


@rpc("qbft_getRequestTimeoutSeconds")
def qbft_get_request_timeout_seconds(node: Node) -> int:
    return max(1, round(node.config.round_timeout))


@rpc("conclave_getBlockCertificate", Param("block", p.block_number_or_tag))
def conclave_get_block_certificate(node: Node, ref: p.BlockRef) -> dict[str, Any] | None:
    """The commit certificate of a block: its round, the seals, who made them and who decided.
    A client verifies it by recovering each seal over the validator digest of
    keccak(block hash ‖ round) (`ledger.signing`, docs/consensus.md)."""
    block = node.block(ref)
    encoded = node.store.certificate(block.number)
    if encoded is None:
        return None
    certificate = decode_certificate(encoded)
    validators = _validators_deciding(node, block.number)
    signers = certificate_signers(block.hash, certificate, validators) or frozenset()
    return {
        "blockNumber": quantity(block.number),
        "blockHash": data(block.hash),
        "round": quantity(certificate.round),
        "seals": [data(seal) for seal in certificate.seals],
        "signers": _addresses(tuple(sorted(signers))),
        "validators": _addresses(validators),
        "proposer": to_checksum_address(proposer_of(validators, block.number, certificate.round)),
    }


@rpc(
    "qbft_getSignerMetrics",
    Param("fromBlock", p.block_number_or_tag, required=False, default=None),
    Param("toBlock", p.block_number_or_tag, required=False, default=None),
)
def qbft_get_signer_metrics(
    node: Node, first: p.BlockRef | None, last: p.BlockRef | None
) -> list[dict[str, Any]]:
    """Per validator: the blocks it proposed and the last one, over a range (Besu's shape;
    by default the last 100 blocks)."""
    end = node.head.number if last is None else node.block_number_of(last)
    start = max(end - 99, 1) if first is None else max(node.block_number_of(first), 1)
    if end - start + 1 > MAX_METRICS_BLOCKS:
        raise InvalidRequest(f"ask for at most {MAX_METRICS_BLOCKS:,} blocks")
    proposed: dict[Address, list[int]] = {}
    for number in range(start, end + 1):
        block, encoded = node.store.block_by_number(number), node.store.certificate(number)
        if block is None or encoded is None:
            continue
        validators = _validators_deciding(node, number)
        for validator in validators:
            proposed.setdefault(validator, [])
        proposer = proposer_of(validators, number, decode_certificate(encoded).round)
        proposed.setdefault(proposer, []).append(number)
    return [
        {
            "address": to_checksum_address(validator),
            "proposedBlockCount": quantity(len(numbers)),
            "lastProposedBlockNumber": quantity(numbers[-1]) if numbers else None,
        }
        for validator, numbers in sorted(proposed.items())
    ]


@rpc("conclave_consensusStatus")
def conclave_consensus_status(node: Node) -> dict[str, Any]:
    """Where this validator is: height, round, proposer, the validators, its peers and what it dropped."""
    return node.consensus_status()
