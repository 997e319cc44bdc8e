"""Reopening a recovered network: the members name its validators anew.

After a disaster recovery (docs/recovery.md) the ledger's governance still names the
validators that were lost, whose keys went with their nodes: no quorum could certify
another block. The members reopen the network, as CCF's "transition to open" does:

- A `Reopening` names the block it follows (number and hash) on one chain, and the new
  validators, each by its attestation quote and the endpoint it listens on.
- Members approve it by signing `Reopening.approval_digest` with their account keys
  (secp256k1, 65 bytes r ‖ s ‖ v).
- The block after that parent is a *reopening block*, a record block
  (`evm_runtime.record_blocks`) whose record is the approved reopening: no transactions,
  and governance's validators replaced by the ones it names. It is valid only if distinct
  members at the parent, at least the recovery threshold of them
  (`GovernanceState.recovery_threshold`, as many as restore the ledger secrets), approved
  it, and every quote verifies against the parent's attestation roots and approved
  measurements at the block's time.
- Its commit certificate is a quorum of the validators it installs (the ones before are
  lost); the blocks after it are certified by those, as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import rlp
from eth.abc import BlockHeaderAPI, StateAPI
from eth_hash.auto import keccak
from eth_keys import keys

from evm_runtime.block_builder import BuiltBlock
from evm_runtime.chain import ChainParams
from evm_runtime.record_blocks import build_record_block, stored_record
from evm_runtime.signatures import InvalidSignature, recover_signer
from evm_runtime.state_db import NodeCache
from evm_runtime.system_contracts import StateStore
from evm_runtime.types import Address, Hash32

from .actions import ActionEnvironment, QuoteVerifier, apply_action
from .codec import encode_state
from .exceptions import GovernanceError, InvalidAction
from .state import Action, GovernanceState
from .system_contract import GOVERNANCE_ADDRESS, governance_state

REOPENING_MAGIC = b"conclave reopening v1\x00"
"""Opens every stored reopening record (`evm_runtime.record_blocks`)."""
APPROVAL_INFO = b"conclave/reopening-approval/v1"
MAX_VALIDATORS = 64
MAX_APPROVALS = 255


class TooFewApprovals(GovernanceError):
    """Fewer members approved the reopening than the recovery threshold asks for."""


@dataclass(frozen=True, slots=True)
class NewValidator:
    quote: bytes
    endpoint: str


@dataclass(frozen=True, slots=True)
class Reopening:
    """What the members approve: after block `parent_number` (`parent_hash`) of chain
    `chain_id`, these validators order the blocks."""

    chain_id: int
    parent_number: int
    parent_hash: Hash32
    validators: tuple[NewValidator, ...]

    def encode(self) -> bytes:
        encoded: bytes = rlp.encode(self._fields())
        return encoded

    def _fields(self) -> list[object]:
        return [
            self.chain_id,
            self.parent_number,
            bytes(self.parent_hash),
            [[v.quote, v.endpoint.encode()] for v in self.validators],
        ]

    @property
    def approval_digest(self) -> bytes:
        """What each approving member signs."""
        return keccak(APPROVAL_INFO + self.encode())

    @classmethod
    def decode(cls, encoded: bytes) -> Reopening:
        """The reopening `encoded` holds; InvalidAction if it is not a canonical one."""
        try:
            reopening = cls._from_fields(rlp.decode(encoded))
        except (rlp.DecodingError, ValueError, TypeError, UnicodeDecodeError):
            raise InvalidAction("not an encoded reopening") from None
        if reopening.encode() != encoded:
            raise InvalidAction("not the canonical encoding of a reopening")
        return reopening

    @classmethod
    def _from_fields(cls, fields: object) -> Reopening:
        chain_id, number, parent_hash, validators = fields  # type: ignore[misc]
        as_int = rlp.sedes.big_endian_int.deserialize
        if len(parent_hash) != 32 or not isinstance(validators, list) or len(validators) > MAX_VALIDATORS:
            raise ValueError("malformed")
        named = tuple(NewValidator(bytes(quote), endpoint.decode()) for quote, endpoint in validators)
        return cls(as_int(chain_id), as_int(number), Hash32(parent_hash), named)


@dataclass(frozen=True, slots=True)
class ApprovedReopening:
    """A reopening with its members' approvals: the record of a reopening block."""

    reopening: Reopening
    approvals: tuple[bytes, ...]

    def encode(self) -> bytes:
        return REOPENING_MAGIC + rlp.encode([self.reopening._fields(), list(self.approvals)])

    @classmethod
    def decode(cls, record: bytes) -> ApprovedReopening:
        """The approved reopening `record` holds; InvalidAction if it is not one."""
        if not record.startswith(REOPENING_MAGIC):
            raise InvalidAction("not a reopening record")
        try:
            fields, approvals = rlp.decode(record[len(REOPENING_MAGIC) :])
            approved = cls(Reopening._from_fields(fields), tuple(bytes(a) for a in approvals))
        except (rlp.DecodingError, ValueError, TypeError, UnicodeDecodeError):
            raise InvalidAction("not an encoded reopening record") from None
        if len(approved.approvals) > MAX_APPROVALS or approved.encode() != record:
            raise InvalidAction("not the canonical encoding of a reopening record")
        return approved


def sign_approval(reopening: Reopening, member_key: bytes) -> bytes:
    """A member's approval of `reopening`, signed with its account key."""
    return keys.PrivateKey(member_key).sign_msg_hash(reopening.approval_digest).to_bytes()


def approver(reopening: Reopening, signature: bytes) -> Address:
    """Who signed an approval of `reopening`; InvalidAction if the signature is malformed."""
    try:
        return recover_signer(reopening.approval_digest, signature)
    except InvalidSignature:
        raise InvalidAction(
            "an approval's signature does not verify: sign the reopening's approval digest "
            "with the member's account key (65 bytes r ‖ s ‖ v)"
        ) from None


def approvers(state: GovernanceState, approved: ApprovedReopening) -> frozenset[Address]:
    """The distinct members whose approvals `approved` holds; InvalidAction if one of them
    is not a member."""
    signers = {approver(approved.reopening, signature) for signature in approved.approvals}
    outsiders = sorted(signer for signer in signers if not state.is_member(signer))
    if outsiders:
        raise InvalidAction(f"0x{outsiders[0].hex()} is not a member: only the members approve a reopening")
    return frozenset(signers)


def reopen(
    state: GovernanceState,
    approved: ApprovedReopening,
    parent: tuple[int, Hash32],
    chain_id: int,
    env: ActionEnvironment,
) -> GovernanceState:
    """Governance after the reopening block that follows block `parent` (number, hash) of
    chain `chain_id`: the validators replaced by those `approved` names, if the rules in the
    module docstring hold; else InvalidAction (TooFewApprovals while approvals are missing)."""
    reopening = approved.reopening
    if reopening.chain_id != chain_id:
        raise InvalidAction(f"the reopening is for chain {reopening.chain_id}, not {chain_id}")
    if (reopening.parent_number, reopening.parent_hash) != parent:
        raise InvalidAction(
            f"the reopening follows block {reopening.parent_number} (0x{reopening.parent_hash.hex()}), "
            f"not block {parent[0]} (0x{parent[1].hex()}): approve the current one"
        )
    if not reopening.validators:
        raise InvalidAction("a reopening names at least one validator")
    signers = approvers(state, approved)
    if len(signers) < state.recovery_threshold:
        raise TooFewApprovals(
            f"{len(signers)} of the {state.recovery_threshold} members' approvals a reopening needs"
        )
    reopened = replace(state, validators={})
    for validator in reopening.validators:
        args = {"quote": validator.quote, "endpoint": validator.endpoint}
        before = len(reopened.validators)
        reopened = apply_action(reopened, Action("add_validator", args), env)
        if len(reopened.validators) == before:
            raise InvalidAction("the reopening names one validator twice")
    return reopened


def build_reopening_block(
    parent: BlockHeaderAPI,
    approved: ApprovedReopening,
    params: ChainParams,
    coinbase: Address,
    timestamp: int,
    cache: NodeCache,
    verify_quote: QuoteVerifier,
) -> tuple[BuiltBlock, tuple[Address, ...]]:
    """The reopening block after `parent` and the validators it installs (InvalidAction if
    `approved` does not reopen it)."""
    env = ActionEnvironment(now=max(timestamp, parent.timestamp + 1), verify_quote=verify_quote)
    installed: list[Address] = []

    def apply(state: StateAPI) -> None:
        store = StateStore(state, GOVERNANCE_ADDRESS)
        current = governance_state(store)
        if current is None:
            raise InvalidAction("a ledger without governance cannot be reopened")
        after = (parent.block_number, Hash32(parent.hash))
        reopened = reopen(current, approved, after, params.chain_id, env)
        store.save(encode_state(reopened))
        installed.extend(sorted(reopened.validators))

    built = build_record_block(parent, approved.encode(), apply, params, coinbase, timestamp, cache)
    return built, tuple(installed)


def stored_reopening(header: BlockHeaderAPI, cache: NodeCache) -> ApprovedReopening | None:
    """The approved reopening a block applied, if it is a reopening block."""
    record = stored_record(header, cache, REOPENING_MAGIC)
    return None if record is None else ApprovedReopening.decode(record)
