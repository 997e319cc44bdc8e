"""Log queries and the polled filters (eth_newFilter family)."""

from __future__ import annotations

from typing import Any

from evm_runtime.exceptions import InvalidRequest
from ledger.store import LogQuery, StoredBlock, log_matches

from .. import params as p
from ..errors import LIMIT_EXCEEDED, RpcError
from ..filters import FilterKind, next_log_window
from ..hexcodec import data, quantity
from ..node import Node
from ..views import log_view, opened_parts
from .registry import LATEST, Param, rpc

# -- logs -----------------------------------------------------------------------------


def _log_range(node: Node, log_filter: p.LogFilter) -> tuple[int, int]:
    """The first and last block a log filter names, resolved against the head now."""
    if log_filter.block_hash is not None:
        block = node.block(p.BlockRef(hash=log_filter.block_hash))
        return block.number, block.number
    first = node.block_number_of(log_filter.from_block or LATEST)
    last = node.block_number_of(log_filter.to_block or LATEST)
    if first > last:
        raise InvalidRequest(f"invalid block range: fromBlock {first} is after toBlock {last}")
    return first, last


def _matching_logs(node: Node, log_filter: p.LogFilter, first: int, last: int) -> list[dict[str, Any]]:
    """The logs of blocks `first`..`last` matching `log_filter`, within the node's log limits."""
    limits = node.config
    if last - first + 1 > limits.max_log_block_range:
        raise RpcError(
            LIMIT_EXCEEDED,
            f"block range too large: {last - first + 1} blocks, at most {limits.max_log_block_range}; "
            "query a narrower range",
        )
    query = LogQuery(first, last, log_filter.addresses, log_filter.topics)
    found = node.store.logs(query, limits.max_log_results)
    confidential = node.confidential_transactions(first, last, query)
    if confidential:
        blocks: dict[int, StoredBlock] = {}
        for opened in confidential:
            number = opened.block_number
            block = blocks.get(number) or blocks.setdefault(number, node.block(p.BlockRef(number=number)))
            found += [
                entry
                for entry in opened_parts(opened.record, block)[2]
                if log_matches(log_filter, entry.address, entry.topics)
            ]
        found.sort(key=lambda entry: (entry.block_number, entry.log_index))
    if len(found) > limits.max_log_results:
        raise RpcError(
            LIMIT_EXCEEDED,
            f"query returned more than {limits.max_log_results} results; query a narrower block range",
        )
    return [log_view(entry) for entry in found]


@rpc("eth_getLogs", Param("filter", p.log_filter))
def eth_get_logs(node: Node, log_filter: p.LogFilter) -> list[dict[str, Any]]:
    return _matching_logs(node, log_filter, *_log_range(node, log_filter))


# -- filters --------------------------------------------------------------------------

FILTER_ID = Param("filterId", p.quantity)


def _lowest_block(ref: p.BlockRef | None) -> int:
    """The lowest block a log filter's fromBlock admits in polls (tags: any new block)."""
    return ref.number if ref is not None and ref.number is not None else 0


def _highest_block(ref: p.BlockRef | None) -> int | None:
    """The highest block a log filter's toBlock admits in polls (None: no bound)."""
    if ref is None or ref.tag not in (None, "earliest"):
        return None
    return ref.number if ref.number is not None else 0


@rpc("eth_newFilter", Param("filter", p.log_filter))
def eth_new_filter(node: Node, log_filter: p.LogFilter) -> str:
    return quantity(node.filters.install_logs(log_filter, node.head.number))


@rpc("eth_newBlockFilter")
def eth_new_block_filter(node: Node) -> str:
    return quantity(node.filters.install_blocks())


@rpc("eth_newPendingTransactionFilter")
def eth_new_pending_transaction_filter(node: Node) -> str:
    return quantity(node.filters.install_pending(node.caller()))


@rpc("eth_getFilterChanges", FILTER_ID)
def eth_get_filter_changes(node: Node, filter_id: int) -> list[Any]:
    """New hashes since the last poll, or the matching logs of blocks not yet reported.

    A log filter reads at most `max_log_block_range` new blocks per poll; the rest are
    reported by the following polls. A block-hash log filter has nothing new to report.
    """
    found = node.filters.get(filter_id)
    if found.kind is not FilterKind.LOGS:
        return [data(item) for item in node.filters.take_hashes(filter_id, node.caller())]
    criteria: p.LogFilter = found.criteria
    head = node.head.number
    window = next_log_window(
        found.last_block,
        head,
        _lowest_block(criteria.from_block),
        _highest_block(criteria.to_block),
        node.config.max_log_block_range,
    )
    if window is None or criteria.block_hash is not None:
        found.last_block = max(found.last_block, head)
        return []
    logs = _matching_logs(node, criteria, window.first, window.last)
    found.last_block = window.last
    return logs


@rpc("eth_getFilterLogs", FILTER_ID)
def eth_get_filter_logs(node: Node, filter_id: int) -> list[dict[str, Any]]:
    """Every log matching a log filter, as eth_getLogs answers for its criteria now."""
    criteria: p.LogFilter = node.filters.get(filter_id, FilterKind.LOGS).criteria
    return _matching_logs(node, criteria, *_log_range(node, criteria))


@rpc("eth_uninstallFilter", FILTER_ID)
def eth_uninstall_filter(node: Node, filter_id: int) -> bool:
    return node.filters.uninstall(filter_id)
