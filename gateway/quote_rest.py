"""`GET /node/quote`: an attestation quote of the node's enclave over report data the caller
chooses (a fresh nonce proves freshness), with the claims it binds. Served by every node,
and by a node in recovery mode: members attest it before they submit a share."""

from __future__ import annotations

from typing import Annotated

from eth_utils import to_checksum_address
from fastapi import APIRouter, Query, Request

from enclave.interface import EnclaveAPI

REPORT_DATA_PATTERN = r"^0x([0-9a-fA-F]{2}){0,64}$"
"""`reportData`: at most 64 bytes in hex."""

router = APIRouter(tags=["node"])


def quote_answer(enclave: EnclaveAPI, report_data: bytes) -> dict[str, str]:
    """A fresh quote of `enclave` over `report_data`, and what it binds."""
    quote = enclave.quote(report_data)
    keys = enclave.node_keys()
    return {
        "quote": "0x" + quote.hex(),
        "measurement": "0x" + enclave.measurement.hex(),
        "nodeAddress": to_checksum_address(keys.address),
        "nodePublicKey": "0x" + keys.public_key.hex(),
        "attestationRoot": "0x" + keys.attestation_root.hex(),
        "reportData": "0x" + report_data.hex(),
    }


@router.get("/node/quote")
async def node_quote(
    request: Request,
    report_data: Annotated[str, Query(alias="reportData", pattern=REPORT_DATA_PATTERN)] = "0x",
) -> dict[str, str]:
    """An attestation quote of this node's enclave over `reportData` (hex, at most 64 bytes)."""
    return quote_answer(request.app.state.node.enclave, bytes.fromhex(report_data[2:]))
