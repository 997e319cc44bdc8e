"""Governance by signed message (EIP-712): a member signs a proposal, a ballot or a
withdrawal offline, as MetaMask's eth_signTypedData_v4 signs, and anyone relays it to the
governance contract's `…Signed` functions; the contract acts as that member.

The domain is `{name: "Conclave Governance", version: "1", chainId, verifyingContract:
the governance contract}`, so a signature is good on one network only. Each message
carries the member's next signature nonce (`nonceOf(member)`), which it uses up: a
signed message applies once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature as KeysBadSignature
from eth_utils import to_checksum_address

from evm_runtime.types import Address

from .exceptions import GovernanceError

DOMAIN_NAME = "Conclave Governance"
DOMAIN_VERSION = "1"
TYPES: dict[str, list[dict[str, str]]] = {
    "Action": [{"name": "kind", "type": "string"}, {"name": "args", "type": "bytes"}],
    "Propose": [{"name": "actions", "type": "Action[]"}, {"name": "nonce", "type": "uint256"}],
    "Vote": [
        {"name": "id", "type": "uint256"},
        {"name": "approve", "type": "bool"},
        {"name": "nonce", "type": "uint256"},
    ],
    "Withdraw": [{"name": "id", "type": "uint256"}, {"name": "nonce", "type": "uint256"}],
}
DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


class BadSignature(GovernanceError):
    pass


def domain(chain_id: int, contract: Address) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(contract),
    }


def typed_data(primary: str, message: dict[str, Any], chain_id: int, contract: Address) -> dict[str, Any]:
    """The full EIP-712 document a wallet signs (eth_signTypedData_v4)."""
    needed = {"Propose": ["Propose", "Action"]}.get(primary, [primary])
    return {
        "types": {"EIP712Domain": DOMAIN_TYPE, **{name: TYPES[name] for name in needed}},
        "primaryType": primary,
        "domain": domain(chain_id, contract),
        "message": message,
    }


def propose_message(actions: Sequence[tuple[str, bytes]], nonce: int) -> dict[str, Any]:
    return {"actions": [{"kind": kind, "args": args} for kind, args in actions], "nonce": nonce}


def vote_message(proposal_id: int, approve: bool, nonce: int) -> dict[str, Any]:
    return {"id": proposal_id, "approve": approve, "nonce": nonce}


def withdraw_message(proposal_id: int, nonce: int) -> dict[str, Any]:
    return {"id": proposal_id, "nonce": nonce}


def signer_of(document: dict[str, Any], signature: bytes) -> Address:
    """The address that signed the EIP-712 `document`; BadSignature if none did."""
    if len(signature) != 65:
        raise BadSignature(f"a signature has 65 bytes (r, s, v), not {len(signature)}")
    try:
        signer = Account.recover_message(encode_typed_data(full_message=document), signature=signature)
    except (ValueError, TypeError, KeysBadSignature) as exc:
        raise BadSignature(f"the signature does not recover: {exc}") from exc
    return Address(bytes.fromhex(signer[2:]))
