"""`GET /receipts/{tx_hash}`: a receipt anyone can verify, the REST twin of
conclave_getTransactionProof (`gateway.rpc.proofs`, docs/receipts.md).

A confidential transaction's receipt is answered only to a caller signed in as someone
who may see it (`Authorization: Bearer <token>`, a token from `/auth/login`); anyone else
gets 404, as for a hash no block holds. A refused token answers 401.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel

from evm_runtime.exceptions import Unauthenticated
from ledger.receipts import receipt_to_json

from .auth_rest import WWW_AUTHENTICATE
from .caller import acting_as
from .rpc.proofs import verifiable_receipt

HASH = r"^0x[0-9a-fA-F]{64}$"


class Certificate(BaseModel):
    round: str
    """The round the block was committed in (hex)."""
    seals: list[str]
    """65-byte validator signatures over the block hash and round."""


class Reopening(BaseModel):
    """What links a reopening block (a recovered network's new validators) to the chain before it."""

    record: str
    """The members' approved reopening: its keccak is the block's extraData."""
    parentHeader: str
    parentCertificate: Certificate
    """The parent's commit certificate, by the validators before the reopening."""
    parentAccountProof: list[str]
    parentStorageProof: list[str]
    parentGovernanceState: str
    """Governance's state at the parent (its members and recovery threshold)."""


class ValidatorChange(BaseModel):
    blockNumber: str
    blockHash: str
    header: str
    certificate: Certificate
    accountProof: list[str]
    storageProof: list[str]
    governanceState: str
    reopening: Reopening | None
    """null unless the block is a reopening."""


class Receipt(BaseModel):
    """The receipt: see docs/receipts.md for every field and how to verify it."""

    format: str
    transactionHash: str
    transaction: str
    receipt: str
    transactionIndex: str
    transactionProof: list[str]
    receiptProof: list[str]
    blockNumber: str
    blockHash: str
    header: str
    certificate: Certificate | None
    validators: list[str]
    validatorChanges: list[ValidatorChange]


class Refusal(BaseModel):
    detail: str


router = APIRouter(prefix="/receipts", tags=["receipts"])


def _caller_token(request: Request) -> str | None:
    """The login token of `Authorization: Bearer …`, once the enclave accepted it (None:
    anonymous); 401 if it is refused."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401, 'the Authorization header takes "Bearer <token>", a token from /auth/login', WWW_AUTHENTICATE
        )
    try:
        request.app.state.node.enclave.viewer(token.strip())
    except Unauthenticated as refused:
        raise HTTPException(401, str(refused), WWW_AUTHENTICATE) from None
    return token.strip()


@router.get(
    "/{tx_hash}",
    response_model=Receipt,
    responses={
        401: {"model": Refusal, "description": "the login token is refused: sign in again"},
        404: {"model": Refusal, "description": "no block holds it, or the caller may not see it"},
    },
)
async def get_receipt(
    request: Request, tx_hash: Annotated[str, Path(pattern=HASH, description="the transaction hash")]
) -> dict[str, Any]:
    """The receipt of a transaction, with the proofs that make it verifiable offline
    (`conclave receipt verify`)."""
    with acting_as(_caller_token(request)):
        receipt = verifiable_receipt(request.app.state.node, bytes.fromhex(tx_hash[2:]))
    if receipt is None:
        raise HTTPException(404, f"transaction {tx_hash} not found")
    return receipt_to_json(receipt)
