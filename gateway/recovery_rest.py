"""`/recovery/...`: disaster recovery's endpoints (docs/recovery.md).

    GET  /recovery/status          whether the enclave reads the ledger; the newest recovery
                                   set (block, threshold, holders); who submitted a share
    GET  /recovery/share/{member}  that member's share, encrypted to its account key, and what
                                   it is bound to (chain id, the set's fingerprint)
    POST /recovery/submit          a member's share, encrypted to this enclave's node key and
                                   signed by the member (`enclave.recovery.seal_submission`)

Everything here is public-safe: shares travel encrypted to their holder or to the enclave.
Served by every node, and by a node in recovery mode (`conclave node --recover`), which
serves nothing else until enough members submitted. Refusals answer `{"detail": …}`: 400 a
malformed or undecryptable submission (or shares that do not restore the key), 403 a signer
who holds no share, 404 no recovery set or no share for that member.
"""

from __future__ import annotations

from typing import Annotated, Any

from eth_utils import to_checksum_address
from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, Field

from enclave.interface import RecoveryStatus
from enclave.recovery import RecoverySet
from evm_runtime.exceptions import InvalidRequest, NotFound, NotPermitted
from evm_runtime.types import Address
from ledger.recovery_sets import latest_recovery_set

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
HEX = r"^0x([0-9a-fA-F]{2}){1,4096}$"

router = APIRouter(prefix="/recovery", tags=["recovery"])


class Refusal(BaseModel):
    detail: str


class Submission(BaseModel):
    encryptedShare: Annotated[str, Field(pattern=HEX)]
    """The member's share encrypted to the enclave's node key (`nodePublicKey` of the status)."""
    signature: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$")]
    """The member's secp256k1 signature (r ‖ s ‖ v) over `submission_digest`."""


def status_to_json(status: RecoveryStatus, chain_id: int) -> dict[str, Any]:
    return {
        "chainId": chain_id,
        "sealed": status.sealed,
        "nodePublicKey": "0x" + bytes(status.node_public_key).hex(),
        "issuedAt": status.issued_at,
        "threshold": status.threshold,
        "secretVersion": status.secret_version,
        "holders": [to_checksum_address(bytes(a)) for a in status.holders],
        "submitted": [to_checksum_address(bytes(a)) for a in status.submitted],
        "problem": status.problem or None,
    }


def _stored_set(request: Request) -> RecoverySet:
    stored = latest_recovery_set(request.app.state.node.store.engine)
    if stored is None:
        raise HTTPException(
            404, "this ledger holds no recovery set: members register recovery keys first (docs/recovery.md)"
        )
    try:
        return RecoverySet.from_bytes(stored[1])
    except ValueError as damaged:
        raise HTTPException(404, f"the stored recovery set is damaged: {damaged}") from None


@router.get("/status")
async def recovery_status(request: Request) -> dict[str, Any]:
    """Where recovery stands (see the module's docstring)."""
    node = request.app.state.node
    return status_to_json(node.enclave.recovery_status(), node.params.chain_id)


@router.get("/share/{member}", responses={404: {"model": Refusal}})
async def recovery_share(request: Request, member: Annotated[str, Path(pattern=ADDRESS)]) -> dict[str, Any]:
    """`member`'s share of the newest recovery set, encrypted to its account key."""
    recovery_set = _stored_set(request)
    entry = recovery_set.shares.get(Address(bytes.fromhex(member[2:])))
    if entry is None:
        raise HTTPException(
            404, f"{member} holds no share of the newest recovery set (block {recovery_set.block_number})"
        )
    return {
        "member": to_checksum_address(member),
        "encryptedShare": "0x" + entry[1].hex(),
        "recoverySet": "0x" + recovery_set.to_bytes().hex(),
        "issuedAt": recovery_set.block_number,
        "threshold": recovery_set.threshold,
    }


@router.post("/submit", responses={400: {"model": Refusal}, 403: {"model": Refusal}, 404: {"model": Refusal}})
async def submit_share(request: Request, submission: Submission) -> dict[str, Any]:
    """Take a member's share; at the threshold the enclave restores and verifies the ledger."""
    node = request.app.state.node
    try:
        status = node.enclave.submit_recovery_share(
            bytes.fromhex(submission.encryptedShare[2:]), bytes.fromhex(submission.signature[2:])
        )
    except InvalidRequest as refused:
        raise HTTPException(400, str(refused)) from None
    except NotPermitted as refused:
        raise HTTPException(403, str(refused)) from None
    except NotFound as refused:
        raise HTTPException(404, str(refused)) from None
    answer = status_to_json(status, node.params.chain_id)
    on_recovered = getattr(request.app.state, "on_recovered", None)
    if not status.sealed and on_recovered is not None:
        on_recovered()
    return answer
