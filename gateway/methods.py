"""The JSON-RPC methods: a table from name to handler and the parsers of its parameters.

Handlers receive the node and parsed parameters and return JSON-ready values. They never
parse hex or build error objects themselves: parameters are parsed by the table, domain
errors are mapped in `errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth.abc import BlockHeaderAPI
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from evm_runtime.chain import decode_header, next_base_fee
from evm_runtime.exceptions import InvalidRequest
from evm_runtime.fees import DEFAULT_PRIORITY_FEE, percentile_rewards
from evm_runtime.transactions import CallRequest, DecodedTransaction
from evm_runtime.types import ZERO_ADDRESS, Address
from ledger.store import LogQuery, StoredBlock

from . import params as p
from .errors import LIMIT_EXCEEDED, RpcError
from .filters import FilterKind, next_log_window
from .hexcodec import address, data, quantity
from .node import Node
from .views import (
    block_size,
    decode_transaction,
    header_view,
    log_view,
    receipt_view,
    transaction_view,
)

CLIENT_VERSION = "Conclave/v0.1.0/python"
MAX_FEE_HISTORY_BLOCKS = 1024
MAX_REWARD_PERCENTILES = 100


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    parse: p.Parser
    required: bool = True
    default: Any = None


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    handler: Callable[..., Any]
    params: tuple[Param, ...]


METHODS: dict[str, Method] = {}


def rpc(name: str, *params: Param) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        METHODS[name] = Method(name, handler, params)
        return handler

    return register


LATEST = p.BlockRef(tag="latest")
BLOCK = Param("block", p.block_ref, required=False, default=LATEST)


# -- client and network ---------------------------------------------------------------


@rpc("web3_clientVersion")
def web3_client_version(node: Node) -> str:
    return CLIENT_VERSION


@rpc("web3_sha3", Param("data", p.data))
def web3_sha3(node: Node, payload: bytes) -> str:
    return data(keccak(payload))


@rpc("net_version")
def net_version(node: Node) -> str:
    return str(node.params.chain_id)


@rpc("net_listening")
def net_listening(node: Node) -> bool:
    return True


@rpc("net_peerCount")
def net_peer_count(node: Node) -> str:
    return quantity(0)


@rpc("eth_chainId")
def eth_chain_id(node: Node) -> str:
    return quantity(node.params.chain_id)


@rpc("eth_syncing")
def eth_syncing(node: Node) -> bool:
    return False


@rpc("eth_blockNumber")
def eth_block_number(node: Node) -> str:
    return quantity(node.head.number)


@rpc("eth_accounts")
def eth_accounts(node: Node) -> list[str | None]:
    return [address(account) for account in node.config.dev_accounts]


@rpc("eth_coinbase")
def eth_coinbase(node: Node) -> str | None:
    return address(node.config.coinbase)


# -- fees -----------------------------------------------------------------------------


@rpc("eth_gasPrice")
def eth_gas_price(node: Node) -> str:
    return quantity(node.enclave.next_base_fee() + DEFAULT_PRIORITY_FEE)


@rpc("eth_maxPriorityFeePerGas")
def eth_max_priority_fee(node: Node) -> str:
    return quantity(DEFAULT_PRIORITY_FEE)


def _rewards(node: Node, block: StoredBlock, base_fee: int, percentiles: list[float]) -> list[str]:
    receipts = node.store.receipts_of_block(block.number) if block.transaction_count else []
    tips = [(r.effective_gas_price - base_fee, r.gas_used) for r in receipts]
    return [quantity(reward) for reward in percentile_rewards(tips, percentiles)]


def _percentiles(value: Any) -> list[float]:
    if not isinstance(value, list) or len(value) > MAX_REWARD_PERCENTILES:
        raise ValueError(f"expected an array of at most {MAX_REWARD_PERCENTILES} percentiles")
    previous = -1.0
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not 0 <= item <= 100:
            raise ValueError("each percentile must be a number from 0 to 100")
        if item < previous:
            raise ValueError("percentiles must be in ascending order")
        previous = item
    return [float(item) for item in value]


def _block_count(value: Any) -> int:
    count = int(value) if isinstance(value, int) and not isinstance(value, bool) else p.quantity(value)
    if not 1 <= count <= MAX_FEE_HISTORY_BLOCKS:
        raise ValueError(f"blockCount must be from 1 to {MAX_FEE_HISTORY_BLOCKS}")
    return count


@rpc(
    "eth_feeHistory",
    Param("blockCount", _block_count),
    Param("newestBlock", p.block_number_or_tag),
    Param("rewardPercentiles", _percentiles, required=False),
)
def eth_fee_history(
    node: Node, count: int, newest_ref: p.BlockRef, percentiles: list[float] | None
) -> dict[str, Any]:
    newest = node.block(newest_ref)
    oldest = max(0, newest.number - count + 1)
    base_fees, ratios, rewards = [], [], []
    for number in range(oldest, newest.number + 1):
        block = newest if number == newest.number else node.store.block_by_number(number)
        assert block is not None
        header = decode_header(block.header)
        base_fees.append(quantity(header.base_fee_per_gas))
        ratios.append(header.gas_used / header.gas_limit)
        if percentiles:
            rewards.append(_rewards(node, block, header.base_fee_per_gas, percentiles))
    base_fees.append(quantity(next_base_fee(decode_header(newest.header))))
    result: dict[str, Any] = {
        "oldestBlock": quantity(oldest),
        "baseFeePerGas": base_fees,
        "gasUsedRatio": ratios,
        "baseFeePerBlobGas": [quantity(0)] * len(base_fees),
        "blobGasUsedRatio": [0.0] * len(ratios),
    }
    if percentiles is not None:
        result["reward"] = rewards
    return result


# -- state ----------------------------------------------------------------------------


@rpc("eth_getBalance", Param("address", p.address), BLOCK)
def eth_get_balance(node: Node, account: bytes, ref: p.BlockRef) -> str:
    return quantity(node.enclave.balance(account, node.block_number_of(ref)))


@rpc("eth_getCode", Param("address", p.address), BLOCK)
def eth_get_code(node: Node, account: bytes, ref: p.BlockRef) -> str:
    return data(node.enclave.code(account, node.block_number_of(ref)))


@rpc("eth_getStorageAt", Param("address", p.address), Param("slot", p.storage_slot), BLOCK)
def eth_get_storage_at(node: Node, account: bytes, slot: int, ref: p.BlockRef) -> str:
    return data(node.enclave.storage_at(account, slot, node.block_number_of(ref)))


@rpc("eth_getTransactionCount", Param("address", p.address), BLOCK)
def eth_get_transaction_count(node: Node, account: bytes, ref: p.BlockRef) -> str:
    if ref.tag == "pending":
        return quantity(node.pending_nonce(account))
    return quantity(node.enclave.nonce(account, node.block_number_of(ref)))


def _call_request(node: Node, call: p.CallObject) -> CallRequest:
    return CallRequest(
        sender=call.sender or ZERO_ADDRESS,
        to=call.to,
        gas=call.gas if call.gas is not None else node.params.gas_limit,
        value=call.value,
        data=call.data,
        gas_price=call.gas_price,
        max_fee_per_gas=call.max_fee_per_gas,
        max_priority_fee_per_gas=call.max_priority_fee_per_gas,
        access_list=call.access_list,
        nonce=call.nonce,
    )


def _check_call_gas(node: Node, call: p.CallObject) -> None:
    if call.gas is not None and call.gas > node.params.gas_limit:
        raise InvalidRequest(f"gas {call.gas} exceeds the block gas limit {node.params.gas_limit}")


@rpc("eth_call", Param("transaction", p.call_object), BLOCK)
def eth_call(node: Node, call: p.CallObject, ref: p.BlockRef) -> str:
    _check_call_gas(node, call)
    return data(node.enclave.call(_call_request(node, call), node.block_number_of(ref)))


@rpc("eth_estimateGas", Param("transaction", p.call_object), BLOCK)
def eth_estimate_gas(node: Node, call: p.CallObject, ref: p.BlockRef) -> str:
    _check_call_gas(node, call)
    return quantity(node.enclave.estimate_gas(_call_request(node, call), node.block_number_of(ref)))


# -- transactions ---------------------------------------------------------------------


@rpc("eth_sendRawTransaction", Param("transaction", p.data))
def eth_send_raw_transaction(node: Node, raw: bytes) -> str:
    return data(node.send_raw_transaction(raw))


def _stored_transaction_view(
    node: Node, stored: Any, block: StoredBlock | None = None, header: BlockHeaderAPI | None = None
) -> dict[str, Any]:
    if block is None:
        block = node.store.block_by_number(stored.block_number)
        assert block is not None
    if header is None:
        header = decode_header(block.header)
    return transaction_view(
        decode_transaction(stored.raw),
        sender=stored.sender,
        block_hash=block.hash,
        block_number=block.number,
        block_timestamp=block.timestamp,
        index=stored.transaction_index,
        base_fee=header.base_fee_per_gas,
    )


def _pending_view(decoded: DecodedTransaction) -> dict[str, Any]:
    """A waiting transaction: no block, index or effective price yet."""
    return transaction_view(
        decoded.tx,
        sender=decoded.sender,
        block_hash=None,
        block_number=None,
        block_timestamp=None,
        index=None,
        base_fee=None,
    )


@rpc("eth_getTransactionByHash", Param("hash", p.hash32))
def eth_get_transaction_by_hash(node: Node, tx_hash: bytes) -> dict[str, Any] | None:
    stored = node.store.transaction(tx_hash)
    if stored is not None:
        return _stored_transaction_view(node, stored)
    pending = node.pool.get(tx_hash)
    return None if pending is None else _pending_view(pending)


@rpc("eth_getTransactionReceipt", Param("hash", p.hash32))
def eth_get_transaction_receipt(node: Node, tx_hash: bytes) -> dict[str, Any] | None:
    receipt = node.store.receipt(tx_hash)
    if receipt is None:
        return None
    return receipt_view(receipt, node.store.logs_of_transaction(tx_hash))


# -- blocks ---------------------------------------------------------------------------


def _block_view(node: Node, block: StoredBlock | None, full: bool) -> dict[str, Any] | None:
    if block is None:
        return None
    header = decode_header(block.header)
    stored = node.store.transactions_of_block(block.number) if block.transaction_count else []
    view = header_view(header, block_size(header, [tx.raw for tx in stored]))
    if full:
        view["transactions"] = [_stored_transaction_view(node, tx, block, header) for tx in stored]
    else:
        view["transactions"] = [data(tx.hash) for tx in stored]
    return view


@rpc(
    "eth_getBlockByNumber",
    Param("block", p.block_number_or_tag),
    Param("full", p.boolean, required=False, default=False),
)
def eth_get_block_by_number(node: Node, ref: p.BlockRef, full: bool) -> dict[str, Any] | None:
    return _block_view(node, node.find_block(ref), full)


@rpc("eth_getBlockByHash", Param("hash", p.hash32), Param("full", p.boolean, required=False, default=False))
def eth_get_block_by_hash(node: Node, block_hash: bytes, full: bool) -> dict[str, Any] | None:
    return _block_view(node, node.store.block_by_hash(block_hash), full)


@rpc("eth_getBlockTransactionCountByNumber", Param("block", p.block_number_or_tag))
def eth_get_block_transaction_count_by_number(node: Node, ref: p.BlockRef) -> str | None:
    block = node.find_block(ref)
    return None if block is None else quantity(block.transaction_count)


@rpc("eth_getBlockTransactionCountByHash", Param("hash", p.hash32))
def eth_get_block_transaction_count_by_hash(node: Node, block_hash: bytes) -> str | None:
    block = node.store.block_by_hash(block_hash)
    return None if block is None else quantity(block.transaction_count)


@rpc(
    "eth_getTransactionByBlockNumberAndIndex",
    Param("block", p.block_number_or_tag),
    Param("index", p.quantity),
)
def eth_get_transaction_by_block_number_and_index(
    node: Node, ref: p.BlockRef, index: int
) -> dict[str, Any] | None:
    block = node.find_block(ref)
    return _transaction_at(node, block, index)


@rpc("eth_getTransactionByBlockHashAndIndex", Param("hash", p.hash32), Param("index", p.quantity))
def eth_get_transaction_by_block_hash_and_index(
    node: Node, block_hash: bytes, index: int
) -> dict[str, Any] | None:
    return _transaction_at(node, node.store.block_by_hash(block_hash), index)


def _transaction_at(node: Node, block: StoredBlock | None, index: int) -> dict[str, Any] | None:
    if block is None or index >= block.transaction_count:
        return None
    stored = node.store.transaction_at(block.number, index)
    return None if stored is None else _stored_transaction_view(node, stored, block)


@rpc("eth_getBlockReceipts", Param("block", p.block_ref))
def eth_get_block_receipts(node: Node, ref: p.BlockRef) -> list[dict[str, Any]] | None:
    block = node.find_block(ref)
    if block is None:
        return None
    logs_by_tx: dict[bytes, list[Any]] = {}
    for entry in node.store.logs_of_block(block.number):
        logs_by_tx.setdefault(entry.transaction_hash, []).append(entry)
    return [
        receipt_view(receipt, logs_by_tx.get(receipt.transaction_hash, []))
        for receipt in node.store.receipts_of_block(block.number)
    ]


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
    return quantity(node.filters.install_pending())


@rpc("eth_getFilterChanges", FILTER_ID)
def eth_get_filter_changes(node: Node, filter_id: int) -> list[Any]:
    """New hashes since the last poll, or the matching logs of blocks not yet reported.

    A log filter reads at most `max_log_block_range` new blocks per poll; the rest are
    reported by the following polls. A block-hash log filter has nothing new to report.
    """
    found = node.filters.get(filter_id)
    if found.kind is not FilterKind.LOGS:
        return [data(item) for item in node.filters.take_hashes(filter_id)]
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


# -- transaction pool -----------------------------------------------------------------

PoolGroup = dict[Address, dict[int, DecodedTransaction]]


def _pool_groups(node: Node) -> tuple[PoolGroup, PoolGroup]:
    return node.pool.by_readiness(node.enclave.account_nonce)


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
    return {"pending": _by_sender(ready, _pending_view), "queued": _by_sender(queued, _pending_view)}


@rpc("txpool_contentFrom", Param("address", p.address))
def txpool_content_from(node: Node, sender: Address) -> dict[str, Any]:
    ready, queued = _pool_groups(node)
    return {
        "pending": {str(nonce): _pending_view(tx) for nonce, tx in ready.get(sender, {}).items()},
        "queued": {str(nonce): _pending_view(tx) for nonce, tx in queued.get(sender, {}).items()},
    }


@rpc("txpool_inspect")
def txpool_inspect(node: Node) -> dict[str, Any]:
    ready, queued = _pool_groups(node)
    return {"pending": _by_sender(ready, _summary), "queued": _by_sender(queued, _summary)}
