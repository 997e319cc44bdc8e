"""`/recovery/...`: disaster recovery's endpoints (docs/recovery.md).

    GET  /recovery/status          whether the enclave reads the ledger; the newest recovery
                                   set (block, threshold, holders); who submitted a share
    GET  /recovery/share/{member}  that member's share, encrypted to its account key, and what
                                   it is bound to (chain id, the set's fingerprint)
    POST /recovery/submit          a member's share, encrypted to this enclave's node key and
                                   signed by the member (`enclave.recovery.seal_submission`)
    GET  /recovery/reopening       once recovered: the reopening this node proposes (itself as
                                   the validator after its head) and who approved it
    POST /recovery/reopening       a member's approval (`governance.reopening.sign_approval`);
                                   with enough, the node commits the reopening block

Everything here is public-safe: shares travel encrypted to their holder or to the enclave.
Served by every node, and by a node in recovery mode (`conclave node --recover`), which
serves nothing else until enough members submitted. Refusals answer `{"detail": …}`: 400 a
malformed or undecryptable submission (or shares that do not restore the key), or an
approval that is not a member's or not of the current reopening; 403 a signer who holds no
share; 404 no recovery set or no share for that member; 409 nothing to reopen (the node
orders blocks already, or is still recovering).
"""

from __future__ import annotations

from typing import Annotated, Any

from eth_utils import to_checksum_address
from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, Field

from enclave.interface import RecoveryStatus
from enclave.recovery import RecoverySet
from evm_runtime.exceptions import InvalidRequest, NotFound, NotPermitted
from evm_runtime.signatures import SIGNATURE_BYTES
from evm_runtime.types import Address
from ledger.recovery_sets import latest_recovery_set

from .reopening import Proposed, Reopenings

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


class ReopeningApproval(BaseModel):
    reopening: Annotated[str, Field(pattern=r"^0x([0-9a-fA-F]{2})+$", max_length=2 + 2 * 65536)]
    """The reopening approved, as `GET /recovery/reopening` gave it."""
    signature: Annotated[str, Field(pattern=rf"^0x[0-9a-fA-F]{{{2 * SIGNATURE_BYTES}}}$")]
    """The member's secp256k1 signature (r ‖ s ‖ v) over its `approvalDigest`."""


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


def _reopenings(request: Request) -> Reopenings:
    reopenings = getattr(request.app.state, "reopenings", None)
    if reopenings is None:
        raise HTTPException(409, "the ledger is still sealed: the members submit their shares first")
    return reopenings  # type: ignore[no-any-return]


def _proposed_to_json(proposed: Proposed) -> dict[str, Any]:
    reopening = proposed.reopening
    return {
        "reopening": "0x" + reopening.encode().hex(),
        "approvalDigest": "0x" + reopening.approval_digest.hex(),
        "chainId": reopening.chain_id,
        "parentNumber": reopening.parent_number,
        "parentHash": "0x" + reopening.parent_hash.hex(),
        "validators": [
            {"endpoint": validator.endpoint, "quote": "0x" + validator.quote.hex()}
            for validator in reopening.validators
        ],
        "approvals": [to_checksum_address(bytes(member)) for member in sorted(proposed.approvals)],
    }


@router.get("/reopening", responses={409: {"model": Refusal}})
async def reopening(request: Request) -> dict[str, Any]:
    """The reopening this recovered node proposes, for the members to approve."""
    try:
        return _proposed_to_json(_reopenings(request).current())
    except NotPermitted as refused:
        raise HTTPException(409, str(refused)) from None


@router.post("/reopening", responses={400: {"model": Refusal}, 409: {"model": Refusal}})
async def approve_reopening(request: Request, approval: ReopeningApproval) -> dict[str, Any]:
    """Take a member's approval; with enough, the reopening block is committed."""
    reopenings = _reopenings(request)
    try:
        encoded, signature = bytes.fromhex(approval.reopening[2:]), bytes.fromhex(approval.signature[2:])
        done = reopenings.approve(encoded, signature)
    except NotPermitted as refused:
        raise HTTPException(409, str(refused)) from None
    except InvalidRequest as refused:
        raise HTTPException(400, str(refused)) from None
    return {
        **_proposed_to_json(done.proposed),
        "reopened": done.block is not None,
        "block": None if done.block is None else done.block.number,
        "problem": done.problem,
    }
