"""`/gov/...`: governance by EIP-712 signed message, for members who sign offline or hold no
ether. The node relays each message to the governance contract's `…Signed` function in a
transaction from its own account (signed in the enclave); the result is the same ledger
transaction a member's own would be, and the answer is its hash.

- `GET /gov/eip712`: the domain and types to sign with (eth_signTypedData_v4), and the
  contract's address.
- `POST /gov/propose`, `/gov/vote`, `/gov/withdraw`: a signed message. It is checked
  before it is relayed (signature, nonce, membership, the proposal's state); a refused
  one answers 400 with the contract's reason, and nothing is sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from evm_runtime.exceptions import ConclaveError
from governance import signed
from governance.system_contract import GOVERNANCE_ADDRESS

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
HEX = r"^0x([0-9a-fA-F]{2})*$"
SIGNATURE = r"^0x[0-9a-fA-F]{130}$"
MAX_ACTIONS = 32
MAX_ARGS_HEX = 2 * 64 * 1024

Uint = Annotated[int, Field(ge=0, lt=2**256)]


class SignedAction(BaseModel):
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    args: Annotated[str, Field(pattern=HEX, max_length=MAX_ARGS_HEX)] = "0x"


class SignedMessage(BaseModel):
    member: Annotated[str, Field(pattern=ADDRESS)]
    nonce: Uint
    signature: Annotated[str, Field(pattern=SIGNATURE)]


class SignedProposal(SignedMessage):
    actions: Annotated[list[SignedAction], Field(min_length=1, max_length=MAX_ACTIONS)]


class SignedBallot(SignedMessage):
    id: Uint
    approve: bool


class SignedWithdrawal(SignedMessage):
    id: Uint


class Relayed(BaseModel):
    transaction: str
    """The hash of the transaction that carries the message."""


REFUSED = {400: {"description": "the message would not apply: the reason says why"}}

router = APIRouter(prefix="/gov", tags=["governance"])


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text[2:])


def _relay(request: Request, signature: str, types: list[str], values: list[Any]) -> Relayed:
    calldata = function_signature_to_4byte_selector(f"{signature}({','.join(types)})") + abi_encode(
        types, values
    )
    try:
        tx_hash = request.app.state.node.relay_governance(calldata)
    except ConclaveError as refused:
        raise HTTPException(status_code=400, detail=str(refused)) from None
    return Relayed(transaction="0x" + tx_hash.hex())


@router.get("/eip712")
async def eip712(request: Request) -> dict[str, Any]:
    """What members sign: the EIP-712 domain of this network's governance, and its types."""
    chain_id = request.app.state.node.params.chain_id
    return {
        "contract": to_checksum_address(GOVERNANCE_ADDRESS),
        "domain": signed.domain(chain_id, GOVERNANCE_ADDRESS),
        "types": {"EIP712Domain": signed.DOMAIN_TYPE, **signed.TYPES},
    }


@router.post("/propose", responses=REFUSED)
def propose(message: SignedProposal, request: Request) -> Relayed:
    """Relay a member's signed proposal (typed data `Propose`)."""
    actions = [(action.kind, _bytes(action.args)) for action in message.actions]
    return _relay(
        request,
        "proposeSigned",
        ["(string,bytes)[]", "address", "uint256", "bytes"],
        [actions, message.member, message.nonce, _bytes(message.signature)],
    )


@router.post("/vote", responses=REFUSED)
def vote(message: SignedBallot, request: Request) -> Relayed:
    """Relay a member's signed ballot (typed data `Vote`)."""
    return _relay(
        request,
        "voteSigned",
        ["uint256", "bool", "address", "uint256", "bytes"],
        [message.id, message.approve, message.member, message.nonce, _bytes(message.signature)],
    )


@router.post("/withdraw", responses=REFUSED)
def withdraw(message: SignedWithdrawal, request: Request) -> Relayed:
    """Relay a member's signed withdrawal (typed data `Withdraw`)."""
    return _relay(
        request,
        "withdrawSigned",
        ["uint256", "address", "uint256", "bytes"],
        [message.id, message.member, message.nonce, _bytes(message.signature)],
    )
