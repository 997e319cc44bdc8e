"""The canonical encoding of the governance state: RLP, every collection sorted, so equal
states encode to equal bytes (and hash alike) on every node.

The state is stored content-addressed beside the chain's state nodes; the system
contract's storage holds its hash, so every block's state root commits to it
(`governance.system_contract`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rlp
from rlp.sedes import big_endian_int

from evm_runtime.types import Address, Hash32

from .constitution import Constitution, Threshold
from .exceptions import GovernanceError
from .state import (
    Action,
    GovernanceState,
    Member,
    NetworkConfig,
    Proposal,
    ProposalState,
    Validator,
)

FORMAT_VERSION = 1
_STATES = tuple(ProposalState)


class CorruptGovernanceState(GovernanceError):
    """Stored governance bytes that do not decode: the ledger is damaged."""


def _int(value: int) -> bytes:
    return big_endian_int.serialize(value)


def _to_int(raw: bytes) -> int:
    return big_endian_int.deserialize(raw)


def _bool(value: bool) -> bytes:
    return b"\x01" if value else b""


def _threshold(threshold: Threshold) -> list[bytes]:
    return [_int(threshold.numerator), _int(threshold.denominator), _bool(threshold.strict)]


def _constitution(c: Constitution) -> list[Any]:
    return [
        _int(c.version),
        c.name.encode(),
        bytes(c.terms_hash),
        _threshold(c.default_threshold),
        [[kind.encode(), _threshold(t)] for kind, t in sorted(c.thresholds.items())],
        [[kind.encode(), sorted(who)] for kind, who in sorted(c.vetoes.items())],
        _int(c.voting_period),
    ]


def _arg(value: object) -> list[Any]:
    """An action argument, tagged with its type."""
    if isinstance(value, bool):
        return [b"t", _bool(value)]
    if isinstance(value, int):
        return [b"i", _int(value)]
    if isinstance(value, bytes):
        return [b"b", value]
    if isinstance(value, str):
        return [b"s", value.encode()]
    if isinstance(value, Constitution):
        return [b"c", _constitution(value)]
    raise GovernanceError(f"an action argument cannot be a {type(value).__name__}")


def _action(action: Action) -> list[Any]:
    return [
        action.kind.encode(),
        [[name.encode(), _arg(value)] for name, value in sorted(action.args.items())],
    ]


def _proposal(p: Proposal) -> list[Any]:
    return [
        _int(p.id),
        bytes(p.proposer),
        [_action(action) for action in p.actions],
        _int(p.created_at),
        _int(p.closes_at),
        _int(_STATES.index(p.state)),
        [[bytes(member), _bool(yes)] for member, yes in sorted(p.ballots.items())],
        p.failure.encode(),
    ]


def _config(config: NetworkConfig) -> list[bytes]:
    return [
        _int(config.block_gas_limit),
        _int(config.min_gas_price),
        _bool(config.free_gas),
        _int(config.block_time_ms),
        _bool(config.open_submission),
        _bool(config.open_deployment),
        _int(config.max_request_bytes),
        # disaster recovery: only when set, so states without it encode as before
        *([_int(config.recovery_threshold)] if config.recovery_threshold else []),
    ]


def _member(address: Address, member: Member) -> list[bytes]:
    """A member; its recovery key only when registered, so states without one encode as before."""
    return [bytes(address), member.name.encode(), member.metadata.encode()] + (
        [member.recovery_key] if member.recovery_key else []
    )


def encode_state(state: GovernanceState) -> bytes:
    """The canonical bytes of `state`."""
    return rlp.encode(
        [
            _int(FORMAT_VERSION),
            [_member(a, m) for a, m in sorted(state.members.items())],
            _constitution(state.constitution),
            sorted(state.users),
            sorted(state.deployers),
            [[bytes(a), v.endpoint.encode(), v.measurement] for a, v in sorted(state.validators.items())],
            sorted(state.measurements),
            [[bytes(contract), sorted(who)] for contract, who in sorted(state.readers.items())],
            _config(state.config),
            _int(state.ledger_secret_version),
            [_proposal(p) for _, p in sorted(state.proposals.items())],
            [[bytes(member), _int(nonce)] for member, nonce in sorted(state.signature_nonces.items())],
            sorted(state.attestation_roots),
        ]
    )


# -- decoding -----------------------------------------------------------------------------


def _to_threshold(raw: list[bytes]) -> Threshold:
    numerator, denominator, strict = raw
    return Threshold(_to_int(numerator), _to_int(denominator), strict == b"\x01")


def _to_constitution(raw: list[Any]) -> Constitution:
    version, name, terms_hash, default, thresholds, vetoes, period = raw
    return Constitution(
        version=_to_int(version),
        name=name.decode(),
        terms_hash=Hash32(terms_hash),
        default_threshold=_to_threshold(default),
        thresholds={kind.decode(): _to_threshold(t) for kind, t in thresholds},
        vetoes={kind.decode(): frozenset(Address(a) for a in who) for kind, who in vetoes},
        voting_period=_to_int(period),
    )


def _to_arg(raw: list[Any]) -> object:
    tag, value = raw
    readers = {
        b"t": lambda v: v == b"\x01",
        b"i": _to_int,
        b"b": bytes,
        b"s": lambda v: v.decode(),
        b"c": _to_constitution,
    }
    return readers[tag](value)


def _to_action(raw: list[Any]) -> Action:
    kind, args = raw
    return Action(kind.decode(), {name.decode(): _to_arg(value) for name, value in args})


def _to_proposal(raw: list[Any]) -> Proposal:
    pid, proposer, actions, created, closes, state, ballots, failure = raw
    return Proposal(
        id=_to_int(pid),
        proposer=Address(proposer),
        actions=tuple(_to_action(a) for a in actions),
        created_at=_to_int(created),
        closes_at=_to_int(closes),
        state=_STATES[_to_int(state)],
        ballots={Address(m): yes == b"\x01" for m, yes in ballots},
        failure=failure.decode(),
    )


def _to_config(raw: list[bytes]) -> NetworkConfig:
    gas_limit, min_price, free_gas, block_time, open_submission, open_deployment, max_request, *recovery = raw
    return NetworkConfig(
        block_gas_limit=_to_int(gas_limit),
        min_gas_price=_to_int(min_price),
        free_gas=free_gas == b"\x01",
        block_time_ms=_to_int(block_time),
        open_submission=open_submission == b"\x01",
        open_deployment=open_deployment == b"\x01",
        max_request_bytes=_to_int(max_request),
        recovery_threshold=_to_int(recovery[0]) if recovery else 0,
    )


def _pairs(raw: list[Any]) -> Mapping[Address, frozenset[Address]]:
    return {Address(contract): frozenset(Address(a) for a in who) for contract, who in raw}


def decode_state(encoded: bytes) -> GovernanceState:
    """The state `encode_state` encoded; CorruptGovernanceState if these are not such bytes."""
    try:
        raw = rlp.decode(encoded)
        (
            version,
            members,
            constitution,
            users,
            deployers,
            validators,
            measurements,
            readers,
            config,
            secret,
            props,
            nonces,
            roots,
        ) = raw
        if _to_int(version) != FORMAT_VERSION:
            raise CorruptGovernanceState(
                f"governance state format {_to_int(version)} is not {FORMAT_VERSION}"
            )
        return GovernanceState(
            members={Address(a): Member(n.decode(), m.decode(), *key) for a, n, m, *key in members},
            constitution=_to_constitution(constitution),
            users=frozenset(Address(a) for a in users),
            deployers=frozenset(Address(a) for a in deployers),
            validators={Address(a): Validator(e.decode(), m) for a, e, m in validators},
            measurements=frozenset(measurements),
            readers=_pairs(readers),
            config=_to_config(config),
            ledger_secret_version=_to_int(secret),
            proposals={p.id: p for p in map(_to_proposal, props)},
            signature_nonces={Address(member): _to_int(nonce) for member, nonce in nonces},
            attestation_roots=frozenset(roots),
        )
    except CorruptGovernanceState:
        raise
    except (rlp.DecodingError, ValueError, TypeError, KeyError, IndexError, GovernanceError) as exc:
        raise CorruptGovernanceState(f"the stored governance state does not decode: {exc}") from exc
