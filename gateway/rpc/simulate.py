"""eth_simulateV1: calls run in simulated blocks on top of a stored block (execution-apis).

The payload is parsed here into `evm_runtime.simulation`'s plain data; the enclave runs it
(`EnclaveAPI.simulate`); the blocks come back as the spec's Block objects with a `calls`
array. A request the rules refuse answers the spec's code for the reason (-38010 nonce too
low, ... -38026 a limit of this node exceeded: see `gateway.errors.to_simulation_error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth.abc import BlockHeaderAPI

from evm_runtime.chain import decode_header
from evm_runtime.exceptions import ConclaveError
from evm_runtime.overrides import NO_OVERRIDES
from evm_runtime.simulation import (
    BlockOverrides,
    BlockStateCall,
    CallResult,
    SimulatedBlock,
    SimulatedCall,
    SimulationRequest,
)
from evm_runtime.types import ZERO_ADDRESS

from .. import params as p
from ..caller import current_token
from ..errors import EXECUTION_REVERTED, VM_EXECUTION_ERROR, to_simulation_error
from ..hexcodec import address, data, quantity
from ..node import Node
from ..views import block_size, decode_transaction, header_view, transaction_view
from .registry import BLOCK, Param, rpc

_PAYLOAD_FIELDS = ("blockStateCalls", "validation", "traceTransfers", "returnFullTransactions")
_BLOCK_FIELDS = ("blockOverrides", "stateOverrides", "calls")
_OVERRIDE_FIELDS = (
    "number",
    "time",
    "gasLimit",
    "feeRecipient",
    "prevRandao",
    "baseFeePerGas",
    "withdrawals",
    "blobBaseFee",
)


@dataclass(frozen=True, slots=True)
class Payload:
    request: SimulationRequest
    full_transactions: bool


def _block_overrides(value: Any) -> BlockOverrides:
    if not isinstance(value, dict):
        raise ValueError(f"blockOverrides must be an object, got {type(value).__name__}")
    p.check_fields(value, _OVERRIDE_FIELDS, "blockOverrides")
    if value.get("withdrawals"):
        raise ValueError("withdrawals cannot be simulated: Conclave has no beacon chain")
    if value.get("blobBaseFee") is not None:
        raise ValueError("blobBaseFee cannot be overridden: Conclave carries no blobs")
    fields: dict[str, Any] = {}
    for name, parse, key in (
        ("number", p.uint64, "number"),
        ("time", p.uint64, "time"),
        ("gas_limit", p.uint64, "gasLimit"),
        ("fee_recipient", p.address, "feeRecipient"),
        ("prev_randao", lambda raw: p.quantity(raw).to_bytes(32, "big"), "prevRandao"),
        ("base_fee_per_gas", p.quantity, "baseFeePerGas"),
    ):
        if value.get(key) is not None:
            try:
                fields[name] = parse(value[key])
            except ValueError as exc:
                raise ValueError(f"blockOverrides.{key}: {exc}") from None
    return BlockOverrides(**fields)


def _call(value: Any) -> SimulatedCall:
    call = p.call_object(value)
    return SimulatedCall(
        sender=call.sender or ZERO_ADDRESS,
        to=call.to,
        gas=call.gas,
        value=call.value,
        data=call.data,
        gas_price=call.gas_price,
        max_fee_per_gas=call.max_fee_per_gas,
        max_priority_fee_per_gas=call.max_priority_fee_per_gas,
        access_list=call.access_list,
        nonce=call.nonce,
    )


def _block_state_call(value: Any) -> BlockStateCall:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object of {', '.join(_BLOCK_FIELDS)}, got {type(value).__name__}")
    p.check_fields(value, _BLOCK_FIELDS, "a block state call")
    calls = value.get("calls")
    if calls is not None and not isinstance(calls, list):
        raise ValueError(f"calls must be an array of call objects, got {type(calls).__name__}")
    parsed = []
    for index, call in enumerate(calls or []):
        try:
            parsed.append(_call(call))
        except ValueError as exc:
            raise ValueError(f"calls[{index}]: {exc}") from None
    overrides = value.get("stateOverrides")
    try:
        state = NO_OVERRIDES if overrides is None else p.state_overrides(overrides)
    except ValueError as exc:
        raise ValueError(f"stateOverrides: {exc}") from None
    block = value.get("blockOverrides")
    return BlockStateCall(
        block=BlockOverrides() if block is None else _block_overrides(block),
        state=state,
        calls=tuple(parsed),
    )


def _flag(value: dict[str, Any], key: str) -> bool:
    flag = value.get(key)
    if flag is None:
        return False
    try:
        return p.boolean(flag)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def simulation_payload(value: Any) -> Payload:
    """The EthSimulatePayload object: blockStateCalls and three flags."""
    if not isinstance(value, dict):
        raise ValueError(f"expected an object with blockStateCalls, got {type(value).__name__}")
    p.check_fields(value, _PAYLOAD_FIELDS, "the payload")
    blocks = value.get("blockStateCalls")
    if not isinstance(blocks, list):
        raise ValueError("blockStateCalls must be an array of {blockOverrides, stateOverrides, calls}")
    parsed = []
    for index, block in enumerate(blocks):
        try:
            parsed.append(_block_state_call(block))
        except ValueError as exc:
            raise ValueError(f"blockStateCalls[{index}]: {exc}") from None
    request = SimulationRequest(
        blocks=tuple(parsed),
        validation=_flag(value, "validation"),
        trace_transfers=_flag(value, "traceTransfers"),
    )
    return Payload(request, _flag(value, "returnFullTransactions"))


# -- the answer -----------------------------------------------------------------------------


def _call_view(result: CallResult, index: int, header: BlockHeaderAPI) -> dict[str, Any]:
    view: dict[str, Any] = {
        "status": quantity(result.status),
        "returnData": data(result.return_data),
        "gasUsed": quantity(result.gas_used),
        "maxUsedGas": quantity(result.max_used_gas),
        "logs": [
            {
                "address": address(log.address),
                "topics": [data(topic) for topic in log.topics],
                "data": data(log.data),
                "blockNumber": quantity(header.block_number),
                "blockHash": data(header.hash),
                "blockTimestamp": quantity(header.timestamp),
                "transactionHash": data(result.hash),
                "transactionIndex": quantity(index),
                "logIndex": quantity(log.log_index),
                "removed": False,
            }
            for log in result.logs
        ],
    }
    if result.error is not None:
        view["error"] = (
            {"code": EXECUTION_REVERTED, "message": result.error, "data": data(result.return_data)}
            if result.reverted
            else {"code": VM_EXECUTION_ERROR, "message": result.error}
        )
    return view


def _block_view(block: SimulatedBlock, full_transactions: bool) -> dict[str, Any]:
    header = decode_header(block.header)
    raws = [call.transaction for call in block.calls]
    view = header_view(header, block_size(header, raws))
    if full_transactions:
        view["transactions"] = [
            transaction_view(
                decode_transaction(call.transaction),
                sender=call.sender,
                block_hash=header.hash,
                block_number=header.block_number,
                block_timestamp=header.timestamp,
                index=index,
                base_fee=header.base_fee_per_gas,
            )
            for index, call in enumerate(block.calls)
        ]
    else:
        view["transactions"] = [data(call.hash) for call in block.calls]
    view["calls"] = [_call_view(call, index, header) for index, call in enumerate(block.calls)]
    return view


@rpc("eth_simulateV1", Param("payload", simulation_payload), BLOCK)
def eth_simulate_v1(node: Node, payload: Payload, ref: p.BlockRef) -> list[dict[str, Any]]:
    try:
        blocks = node.enclave.simulate(payload.request, node.block_number_of(ref), current_token())
    except ConclaveError as error:
        raise to_simulation_error(error) from None
    return [_block_view(block, payload.full_transactions) for block in blocks]
