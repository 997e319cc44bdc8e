"""The governance system contract: the consortium's governance reached as an Ethereum
contract at `GOVERNANCE_ADDRESS`, so wallets and web3 libraries govern with no special
tooling and every step is a transaction in the ledger.

Its ABI (`ABI`, printed by `conclave gov abi`) has `propose`, `vote`, `withdraw`, their
`…Signed` twins that anyone may send with a member's EIP-712 signature (`governance.signed`;
the contract acts as that member, once per signature nonce), and views of members, users,
proposals and the constitution, with the events ProposalCreated, BallotCast and
ProposalResolved. A proposal's actions are `(kind, args)` pairs, `args`
ABI-encoded as `ACTION_ARGS` lists for each kind. A refused request reverts with an
`Error(string)` reason saying why (not a member, unknown proposal, expired, ...).

Ledger time is the block's timestamp: proposals open before it whose time is up are
closed (ProposalResolved, state expired) by the next request that changes governance.
Writing costs `WRITE_GAS` plus `BYTE_GAS` per byte of the state it rewrites (as it was
before: the price does not depend on the block's time, so estimates hold); reading
`READ_GAS`.
Transactions from senders the state refuses (`GovernanceState.may_send`/`may_deploy`)
never run (`refusal`); the configuration's block gas limit and free-gas mode are the next
block's rules (`block_rules`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from coincurve import PublicKey
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_hash.auto import keccak

from evm_runtime.system_contracts import BlockRules, SystemCall, SystemLog, SystemOutcome, SystemStore
from evm_runtime.types import Address, Hash32

from . import signed
from .actions import OPTIONAL_ARGS, ActionEnvironment, QuoteVerifier
from .codec import decode_state, encode_state
from .constitution import Constitution, Threshold
from .exceptions import GovernanceError
from .proposals import expire, propose, vote, withdraw
from .state import CONFIG_KEYS, Action, GovernanceState, Proposal, ProposalState

GOVERNANCE_ADDRESS = Address(bytes.fromhex("00000000000000000000000000000000000c0c1e"))
CODE_MARKER = bytes.fromhex("fe")
"""The account's code, so tools see a contract there (calls never run it)."""
READ_GAS = 5_000
WRITE_GAS = 40_000
BYTE_GAS = 4
STATES = tuple(ProposalState)

THRESHOLD = "(uint8,uint8,bool)"
ACTION_ARGS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "add_member": (("address", "address"), ("name", "string"), ("metadata", "string")),
    "remove_member": (("address", "address"),),
    "add_user": (("address", "address"), ("deploy", "bool")),
    "remove_user": (("address", "address"),),
    "add_validator": (("quote", "bytes"), ("endpoint", "string")),
    "remove_validator": (("address", "address"),),
    "approve_measurement": (("measurement", "bytes32"),),
    "revoke_measurement": (("measurement", "bytes32"),),
    "set_config": (("key", "string"), ("value", "uint256")),
    "set_constitution": (
        ("name", "string"),
        ("terms_hash", "bytes32"),
        ("voting_period", "uint64"),
        ("default_threshold", THRESHOLD),
        ("thresholds", f"(string,{THRESHOLD})[]"),
        ("vetoes", "(string,address[])[]"),
    ),
    "grant_reader": (("contract", "address"), ("reader", "address")),
    "revoke_reader": (("contract", "address"), ("reader", "address")),
    "rotate_ledger_secret": (),
}
"""How each action kind's arguments are ABI-encoded in `propose`."""


def _function(
    name: str, inputs: Sequence[tuple[str, str]], outputs: Sequence[tuple[str, str]], view: bool
) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "stateMutability": "view" if view else "nonpayable",
        "inputs": [_abi_param(n, t) for n, t in inputs],
        "outputs": [_abi_param(n, t) for n, t in outputs],
    }


def _abi_param(name: str, kind: str) -> dict[str, Any]:
    """A JSON ABI parameter; tuples become components."""
    if kind == "(string,bytes)[]":
        return {
            "name": name,
            "type": "tuple[]",
            "components": [{"name": "kind", "type": "string"}, {"name": "args", "type": "bytes"}],
        }
    return {"name": name, "type": kind}


_FUNCTIONS: dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...], bool]] = {
    "propose": ((("actions", "(string,bytes)[]"),), (("id", "uint256"),), False),
    "vote": ((("id", "uint256"), ("approve", "bool")), (), False),
    "withdraw": ((("id", "uint256"),), (), False),
    "proposeSigned": (
        (
            ("actions", "(string,bytes)[]"),
            ("member", "address"),
            ("nonce", "uint256"),
            ("signature", "bytes"),
        ),
        (("id", "uint256"),),
        False,
    ),
    "voteSigned": (
        (
            ("id", "uint256"),
            ("approve", "bool"),
            ("member", "address"),
            ("nonce", "uint256"),
            ("signature", "bytes"),
        ),
        (),
        False,
    ),
    "withdrawSigned": (
        (("id", "uint256"), ("member", "address"), ("nonce", "uint256"), ("signature", "bytes")),
        (),
        False,
    ),
    "nonceOf": ((("member", "address"),), (("nonce", "uint256"),), True),
    "proposalCount": ((), (("count", "uint256"),), True),
    "proposal": (
        (("id", "uint256"),),
        (
            ("proposer", "address"),
            ("state", "uint8"),
            ("createdAt", "uint64"),
            ("closesAt", "uint64"),
            ("yes", "uint256"),
            ("no", "uint256"),
            ("failure", "string"),
        ),
        True,
    ),
    "proposalActions": ((("id", "uint256"),), (("actions", "(string,bytes)[]"),), True),
    "ballot": ((("id", "uint256"), ("member", "address")), (("voted", "bool"), ("approve", "bool")), True),
    "isMember": ((("account", "address"),), (("member", "bool"),), True),
    "members": ((), (("members", "address[]"),), True),
    "isUser": ((("account", "address"),), (("user", "bool"),), True),
    "users": ((), (("users", "address[]"),), True),
    "constitution": (
        (),
        (("version", "uint256"), ("name", "string"), ("termsHash", "bytes32"), ("votingPeriod", "uint64")),
        True,
    ),
    # -- disaster recovery (docs/recovery.md) --
    "setRecoveryKey": ((("publicKey", "bytes"),), (), False),
    "recoveryKey": ((("member", "address"),), (("publicKey", "bytes"),), True),
}
_EVENTS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "ProposalCreated": (
        ("id", "uint256", True),
        ("proposer", "address", True),
        ("closesAt", "uint64", False),
    ),
    "BallotCast": (("id", "uint256", True), ("member", "address", True), ("approve", "bool", False)),
    "ProposalResolved": (("id", "uint256", True), ("state", "uint8", False)),
}


def _signature(name: str, types: Sequence[str]) -> str:
    return f"{name}({','.join(types)})"


ABI: list[dict[str, Any]] = [
    *(_function(name, inputs, outputs, view) for name, (inputs, outputs, view) in _FUNCTIONS.items()),
    *(
        {
            "type": "event",
            "name": name,
            "anonymous": False,
            "inputs": [{"name": n, "type": t, "indexed": indexed} for n, t, indexed in fields],
        }
        for name, fields in _EVENTS.items()
    ),
]
"""The contract's JSON ABI."""

SELECTORS: dict[bytes, str] = {
    keccak(_signature(name, [t for _, t in inputs]).encode())[:4]: name
    for name, (inputs, _, _) in _FUNCTIONS.items()
}
EVENT_TOPICS: dict[str, bytes] = {
    name: keccak(_signature(name, [t for _, t, _ in fields]).encode()) for name, fields in _EVENTS.items()
}
ERROR_SELECTOR = keccak(b"Error(string)")[:4]


class Refused(Exception):
    """A request the contract reverts, with its reason."""


# -- actions to and from ABI --------------------------------------------------------------


def _threshold(raw: Sequence[Any]) -> Threshold:
    numerator, denominator, strict = raw
    return Threshold(numerator, denominator, strict)


def decode_action(kind: str, encoded: bytes) -> Action:
    """The action `(kind, args)` of a `propose` call."""
    fields = ACTION_ARGS.get(kind)
    if fields is None:
        raise GovernanceError(f"unknown action {kind!r}; known: {', '.join(sorted(ACTION_ARGS))}")
    try:
        values = abi_decode([t for _, t in fields], encoded) if fields else ()
    except (DecodingError, ValueError, OverflowError) as exc:
        types = ",".join(t for _, t in fields)
        raise GovernanceError(f"arguments of {kind} must be ABI-encoded ({types}): {exc}") from exc
    args: dict[str, object] = {}
    for (name, kind_of), value in zip(fields, values, strict=True):
        args[name] = bytes.fromhex(value[2:]) if kind_of == "address" else value
    if kind == "set_config":
        key = args["key"]
        if CONFIG_KEYS.get(str(key)) is bool:
            if args["value"] not in (0, 1):
                raise GovernanceError(f"{key} takes 0 (false) or 1 (true)")
            args["value"] = args["value"] == 1
    if kind == "set_constitution":
        args = {
            "constitution": Constitution(
                name=str(args["name"]),
                terms_hash=Hash32(bytes(args["terms_hash"])),  # type: ignore[arg-type]
                voting_period=int(args["voting_period"]),  # type: ignore[call-overload]
                default_threshold=_threshold(args["default_threshold"]),  # type: ignore[arg-type]
                thresholds={k: _threshold(t) for k, t in args["thresholds"]},  # type: ignore[attr-defined]
                vetoes={k: frozenset(bytes.fromhex(a[2:]) for a in who) for k, who in args["vetoes"]},  # type: ignore[attr-defined]
            )
        }
    return Action(kind, args)


def encode_action(action: Action) -> tuple[str, bytes]:
    """`(kind, args)` as `propose` takes them: the inverse of `decode_action`."""
    fields = ACTION_ARGS[action.kind]
    args = dict(action.args)
    if action.kind == "set_constitution":
        c = args["constitution"]
        assert isinstance(c, Constitution)
        args = {
            "name": c.name,
            "terms_hash": bytes(c.terms_hash),
            "voting_period": c.voting_period,
            "default_threshold": _threshold_tuple(c.default_threshold),
            "thresholds": [(k, _threshold_tuple(t)) for k, t in sorted(c.thresholds.items())],
            "vetoes": [(k, sorted(who)) for k, who in sorted(c.vetoes.items())],
        }
    if action.kind == "set_config" and isinstance(args.get("value"), bool):
        args["value"] = int(bool(args["value"]))
    values = [args.get(name, OPTIONAL_ARGS.get(name)) for name, _ in fields]
    return action.kind, abi_encode([t for _, t in fields], values) if fields else b""


def _threshold_tuple(threshold: Threshold) -> tuple[int, int, bool]:
    return threshold.numerator, threshold.denominator, threshold.strict


# -- disaster recovery (docs/recovery.md) -------------------------------------------------


def recovery_key_of(account: Address, public_key: bytes) -> bytes:
    """`public_key` (33 bytes compressed, 64 raw or 65 uncompressed) compressed, if it is the
    key of `account`; Refused otherwise."""
    raw = b"\x04" + public_key if len(public_key) == 64 else public_key
    try:
        key = PublicKey(raw)
    except ValueError:
        raise Refused("not a secp256k1 public key (33, 64 or 65 bytes)") from None
    if keccak(key.format(compressed=False)[1:])[12:] != account:
        raise Refused(f"this public key is not 0x{account.hex()}'s: register your own account's key")
    return bytes(key.format(compressed=True))


# -- the contract -------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _decoded(blob: bytes) -> GovernanceState:
    return decode_state(blob)


def governance_state(store: SystemStore) -> GovernanceState | None:
    """The governance state a store holds; None on a chain whose genesis named no members."""
    blob = store.load()
    return None if blob is None else _decoded(blob)


def _revert(reason: str) -> SystemOutcome:
    return SystemOutcome(
        output=ERROR_SELECTOR + abi_encode(["string"], [reason]), gas=READ_GAS, reverted=True
    )


def _event(name: str, *values: Any) -> SystemLog:
    fields = _EVENTS[name]
    topics = [EVENT_TOPICS[name]]
    data_types, data_values = [], []
    for (_, kind, indexed), value in zip(fields, values, strict=True):
        if indexed:
            topics.append(abi_encode([kind], [value]))
        else:
            data_types.append(kind)
            data_values.append(value)
    return SystemLog(tuple(topics), abi_encode(data_types, data_values))


def _resolutions(before: GovernanceState, after: GovernanceState) -> list[SystemLog]:
    """ProposalResolved for every proposal that left the open state."""
    return [
        _event("ProposalResolved", pid, STATES.index(proposal.state))
        for pid, proposal in sorted(after.proposals.items())
        if proposal.state is not ProposalState.OPEN
        and (pid not in before.proposals or before.proposals[pid].state is ProposalState.OPEN)
    ]


def _tally(state: GovernanceState, proposal: Proposal) -> tuple[int, int]:
    counted = [yes for member, yes in proposal.ballots.items() if state.is_member(member)]
    return sum(counted), len(counted) - sum(counted)


class GovernanceContract:
    """The system contract; `verify_quote` checks validators' quotes (the enclave's)."""

    address = GOVERNANCE_ADDRESS

    def __init__(self, verify_quote: QuoteVerifier | None = None) -> None:
        self._verify_quote = verify_quote

    def block_rules(self, store: SystemStore) -> BlockRules | None:
        state = governance_state(store)
        if state is None:
            return None
        return BlockRules(gas_limit=state.config.block_gas_limit, free_gas=state.config.free_gas)

    def refusal(self, sender: Address, creates: bool, store: SystemStore) -> str | None:
        blob = store.load()
        if blob is None:
            return None
        state = _decoded(blob)
        if not state.may_send(sender):
            return (
                f"0x{sender.hex()} is not a user of this network: "
                "the consortium's members can add it (action add_user)"
            )
        if creates and not state.may_deploy(sender):
            return (
                f"0x{sender.hex()} may not deploy contracts on this network: "
                "the consortium's members can allow it (action add_user with deploy)"
            )
        return None

    def call(self, call: SystemCall, store: SystemStore) -> SystemOutcome:
        blob = store.load()
        if blob is None:
            return _revert("this network has no governance: its genesis named no members")
        name = SELECTORS.get(call.data[:4])
        if name is None:
            return _revert("no such function: see `conclave gov abi` for the governance ABI")
        inputs, outputs, view = _FUNCTIONS[name]
        if call.value:
            return _revert("the governance contract takes no ether")
        try:
            args = abi_decode([t for _, t in inputs], call.data[4:]) if inputs else ()
        except (DecodingError, ValueError, OverflowError) as exc:
            return _revert(f"{name}: arguments do not decode: {exc}")
        state = _decoded(blob)
        try:
            if view:
                values = getattr(self, f"_view_{name}")(state, *args)
                return SystemOutcome(output=abi_encode([t for _, t in outputs], values), gas=READ_GAS)
            if call.static:
                return _revert(f"{name} changes state: send it as a transaction, not a call")
            env = ActionEnvironment(now=call.timestamp, verify_quote=self._verify_quote)
            current = expire(state, call.timestamp)
            if name.endswith("Signed"):
                name, sender, current, args = self._signed(name, current, call.chain_id, args)
            else:
                sender = Address(call.sender)
            changed, output, logs = getattr(self, f"_write_{name}")(current, sender, env, *args)
        except (GovernanceError, Refused) as refused:
            return _revert(str(refused))
        new_blob = encode_state(changed)
        store.save(new_blob)
        logs = [*_resolutions(state, current), *logs, *_resolutions(current, changed)]
        return SystemOutcome(output=output, gas=WRITE_GAS + BYTE_GAS * len(blob), logs=tuple(logs))

    # -- writes -----------------------------------------------------------------------

    def _signed(
        self, name: str, state: GovernanceState, chain_id: int, args: Sequence[Any]
    ) -> tuple[str, Address, GovernanceState, tuple[Any, ...]]:
        """The member a signed message comes from, once its signature and nonce check out;
        the state with that nonce used, and the plain request's name and arguments."""
        *plain, member_hex, nonce, signature = args
        member = Address(bytes.fromhex(member_hex[2:]))
        expected = state.signature_nonce(member)
        if nonce != expected:
            raise Refused(f"nonce {nonce} is not 0x{member.hex()}'s next one: {expected} (see nonceOf)")
        if name == "proposeSigned":
            message = signed.propose_message(plain[0], nonce)
        elif name == "voteSigned":
            message = signed.vote_message(plain[0], plain[1], nonce)
        else:
            message = signed.withdraw_message(plain[0], nonce)
        primary = name.removesuffix("Signed").capitalize()
        document = signed.typed_data(primary, message, chain_id, GOVERNANCE_ADDRESS)
        signer = signed.signer_of(document, signature)
        if signer != member:
            raise Refused(f"the signature is 0x{signer.hex()}'s, not 0x{member.hex()}'s")
        used = replace(state, signature_nonces={**state.signature_nonces, member: nonce + 1})
        return name.removesuffix("Signed"), member, used, tuple(plain)

    def _write_propose(
        self,
        state: GovernanceState,
        sender: Address,
        env: ActionEnvironment,
        actions: Sequence[tuple[str, bytes]],
    ) -> tuple[GovernanceState, bytes, list[SystemLog]]:
        decoded = [decode_action(kind, args) for kind, args in actions]
        changed, pid = propose(state, sender, decoded, env)
        closes_at = changed.proposals[pid].closes_at
        return changed, abi_encode(["uint256"], [pid]), [_event("ProposalCreated", pid, sender, closes_at)]

    def _write_vote(
        self, state: GovernanceState, sender: Address, env: ActionEnvironment, pid: int, approve: bool
    ) -> tuple[GovernanceState, bytes, list[SystemLog]]:
        changed = vote(state, sender, pid, approve, env)
        return changed, b"", [_event("BallotCast", pid, sender, approve)]

    def _write_withdraw(
        self, state: GovernanceState, sender: Address, env: ActionEnvironment, pid: int
    ) -> tuple[GovernanceState, bytes, list[SystemLog]]:
        return withdraw(state, sender, pid, env), b"", []

    # -- disaster recovery (docs/recovery.md) ---------------------------------------------

    def _write_setRecoveryKey(
        self, state: GovernanceState, sender: Address, env: ActionEnvironment, public_key: bytes
    ) -> tuple[GovernanceState, bytes, list[SystemLog]]:
        """A member registers the public key of its own account (the sender's), which its
        recovery share is encrypted to: no vote, as the key proves itself against the address."""
        member = state.members.get(sender)
        if member is None:
            raise Refused(f"0x{sender.hex()} is not a member: only members hold recovery shares")
        compressed = recovery_key_of(sender, public_key)
        members = {**state.members, sender: replace(member, recovery_key=compressed)}
        return replace(state, members=members), b"", []

    def _view_recoveryKey(self, state: GovernanceState, member: str) -> list[Any]:
        found = state.members.get(Address(bytes.fromhex(member[2:])))
        return [b"" if found is None else found.recovery_key]

    # -- views --------------------------------------------------------------------------

    def _proposal(self, state: GovernanceState, pid: int) -> Proposal:
        proposal = state.proposals.get(pid)
        if proposal is None:
            raise Refused(f"no proposal {pid}")
        return proposal

    # Named after the ABI's functions.

    def _view_nonceOf(self, state: GovernanceState, member: str) -> list[Any]:
        return [state.signature_nonce(Address(bytes.fromhex(member[2:])))]

    def _view_proposalCount(self, state: GovernanceState) -> list[Any]:
        return [len(state.proposals)]

    def _view_proposal(self, state: GovernanceState, pid: int) -> list[Any]:
        proposal = self._proposal(state, pid)
        yes, no = _tally(state, proposal)
        status = proposal.state
        return [
            proposal.proposer,
            STATES.index(status),
            proposal.created_at,
            proposal.closes_at,
            yes,
            no,
            proposal.failure,
        ]

    def _view_proposalActions(self, state: GovernanceState, pid: int) -> list[Any]:
        return [[encode_action(action) for action in self._proposal(state, pid).actions]]

    def _view_ballot(self, state: GovernanceState, pid: int, member: str) -> list[Any]:
        ballot = self._proposal(state, pid).ballots.get(Address(bytes.fromhex(member[2:])))
        return [ballot is not None, bool(ballot)]

    def _view_isMember(self, state: GovernanceState, account: str) -> list[Any]:
        return [state.is_member(Address(bytes.fromhex(account[2:])))]

    def _view_members(self, state: GovernanceState) -> list[Any]:
        return [sorted(state.members)]

    def _view_isUser(self, state: GovernanceState, account: str) -> list[Any]:
        return [Address(bytes.fromhex(account[2:])) in state.users]

    def _view_users(self, state: GovernanceState) -> list[Any]:
        return [sorted(state.users)]

    def _view_constitution(self, state: GovernanceState) -> list[Any]:
        c = state.constitution
        return [c.version, c.name, bytes(c.terms_hash), c.voting_period]
