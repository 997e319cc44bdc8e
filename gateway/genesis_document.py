"""The genesis document: what a new network starts with, as JSON (`conclave init` writes it,
`conclave node` and `conclave dev --genesis` read it).

    {
      "chainId": 1337,
      "timestamp": 1767225600,
      "alloc": {"0x…": {"balance": "1000000000000000000000"}},
      "consortium": {
        "members": [{"address": "0x…", "name": "Acme Retail", "metadata": "",
                     "recoveryKey": "0x02…"}],
        "users": [{"address": "0x…", "deploy": true}],
        "constitution": {"name": "…", "termsHash": "0x…", "votingPeriod": 604800,
                         "defaultThreshold": "more than 1/2",
                         "thresholds": {"add_member": "at least 2/3"},
                         "vetoes": {"remove_member": ["0x…"]}},
        "config": {"open_submission": false, "open_deployment": true},
        "validators": [{"address": "0x…", "endpoint": "127.0.0.1:30300", "measurement": "0x…"}],
        "attestationRoots": ["0x…"],
        "measurements": ["0x…"]
      }
    }

Every field but `consortium.members` may be left out. Without `validators`, the node that
starts the network is its only validator, running the enclave code it runs (its
measurement is approved, its attestation root trusted). With `validators` (each one's
address is its enclave's node key, its endpoint the "host:port" its transport listens
on), those are the validators, and every one of them starts from this document; one
listed without a `measurement` is taken to run the code of the node reading it.
Such a document needs a `timestamp` (seconds since 1970), so that every validator makes
the same genesis block. `attestationRoots` and `measurements` (32 bytes each, in hex) are
trusted and approved besides the reading node's own: list every validator's root when
they do not share one. A member's `recoveryKey` (optional) is the compressed secp256k1
public key (33 bytes, in hex) of its own address, which its disaster-recovery share is
encrypted to, as if it had sent `setRecoveryKey` (docs/recovery.md): with enough of them,
a network is recoverable from block 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from eth_keys import keys
from eth_utils.exceptions import ValidationError

from evm_runtime.chain import GenesisAccount
from evm_runtime.types import Address, Hash32
from governance.constitution import Constitution, Threshold, default_constitution
from governance.exceptions import GovernanceError
from governance.state import CONFIG_KEYS, GovernanceState, Member, NetworkConfig, Validator
from governance.system_contract import Refused, recovery_key_of
from ledger.network import parse_endpoint

FORMAT = "conclave-genesis/1"
KEY_BYTES = 32
"""The length of an enclave measurement and of an attestation root's public key."""
RECOVERY_KEY_BYTES = 33
"""A member's recovery key: a compressed secp256k1 public key."""


class InvalidGenesis(ValueError):
    """A genesis document that cannot start a network; the message says where."""


@dataclass(frozen=True)
class GenesisSpec:
    chain_id: int | None
    alloc: Mapping[Address, GenesisAccount]
    governance: GovernanceState
    timestamp: int | None = None
    """The genesis block's time, in seconds since 1970 (None: when the node makes it)."""


def _address(text: Any, where: str) -> Address:
    if not isinstance(text, str) or len(text) != 42 or not text.startswith("0x"):
        raise InvalidGenesis(f"{where}: expected a 0x-prefixed 20-byte address, got {text!r}")
    try:
        return Address(bytes.fromhex(text[2:]))
    except ValueError:
        raise InvalidGenesis(f"{where}: {text!r} is not hex") from None


def _key(text: Any, where: str) -> bytes:
    if not isinstance(text, str) or not text.startswith("0x") or len(text) != 2 + 2 * KEY_BYTES:
        raise InvalidGenesis(f"{where}: expected {KEY_BYTES} bytes in 0x-prefixed hex, got {text!r}")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise InvalidGenesis(f"{where}: {text!r} is not hex") from None


def _recovery_key(member: Address, text: Any, where: str) -> bytes:
    """A member's recovery key: its own address's public key, compressed (b"": none)."""
    if text is None:
        return b""
    if not isinstance(text, str) or not text.startswith("0x") or len(text) != 2 + 2 * RECOVERY_KEY_BYTES:
        raise InvalidGenesis(
            f"{where}: expected a compressed secp256k1 public key, {RECOVERY_KEY_BYTES} bytes in "
            f"0x-prefixed hex (0x02… or 0x03…), got {text!r}"
        )
    try:
        key = bytes.fromhex(text[2:])
    except ValueError:
        raise InvalidGenesis(f"{where}: {text!r} is not hex") from None
    if key[0] not in (2, 3):
        raise InvalidGenesis(f"{where}: a compressed public key starts with 0x02 or 0x03, got {text[:4]!r}")
    try:
        owner = Address(keys.PublicKey.from_compressed_bytes(key).to_canonical_address())
    except (ValueError, ValidationError):
        raise InvalidGenesis(f"{where}: {text} is not a secp256k1 public key") from None
    if owner != member:
        raise InvalidGenesis(
            f"{where}: {text} is the key of 0x{owner.hex()}, not of this member 0x{member.hex()}: "
            "a member's recovery key is its own address's public key"
        )
    try:
        return recovery_key_of(member, key)  # what setRecoveryKey would keep
    except Refused as refused:
        raise InvalidGenesis(f"{where}: {refused}") from None


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidGenesis(f"{where}: expected a JSON list, got {value!r}")
    return value


def _validators(entries: Any) -> dict[Address, Validator]:
    """consortium.validators: each one's address, endpoint and (optional) measurement."""
    validators: dict[Address, Validator] = {}
    listening: dict[str, Address] = {}
    for index, entry in enumerate(_list(entries, "consortium.validators")):
        where = f"consortium.validators[{index}]"
        if not isinstance(entry, dict):
            raise InvalidGenesis(f"{where}: expected {{address, endpoint, measurement}}")
        unknown = sorted(set(entry) - {"address", "endpoint", "measurement"})
        if unknown:
            raise InvalidGenesis(f"{where}: unknown keys {unknown}; known: address, endpoint, measurement")
        address = _address(entry.get("address"), f"{where}.address")
        if address in validators:
            raise InvalidGenesis(f"{where}: 0x{address.hex()} is listed twice")
        endpoint = entry.get("endpoint")
        if not isinstance(endpoint, str) or parse_endpoint(endpoint) is None:
            raise InvalidGenesis(
                f'{where}.endpoint: expected "host:port" with a port from 1 to 65535 (such as '
                f'"127.0.0.1:30300": where its validator transport listens), got {endpoint!r}'
            )
        if endpoint in listening:
            raise InvalidGenesis(
                f"{where}.endpoint: 0x{listening[endpoint].hex()} listens on {endpoint} already; "
                "each validator needs its own"
            )
        listening[endpoint] = address
        measurement = entry.get("measurement")
        validators[address] = Validator(
            endpoint, b"" if measurement is None else _key(measurement, f"{where}.measurement")
        )
    return validators


def _keys(entries: Any, where: str) -> frozenset[bytes]:
    return frozenset(_key(text, f"{where}[{i}]") for i, text in enumerate(_list(entries, where)))


def threshold_from_text(text: Any, where: str = "a threshold") -> Threshold:
    """'more than N/D' or 'at least N/D'."""
    words = text.split() if isinstance(text, str) else []
    if len(words) != 3 or " ".join(words[:2]) not in ("more than", "at least") or "/" not in words[2]:
        raise InvalidGenesis(f"{where} reads 'more than N/D' or 'at least N/D', not {text!r}")
    try:
        numerator, denominator = (int(part) for part in words[2].split("/", 1))
        return Threshold(numerator, denominator, strict=words[0] == "more")
    except (ValueError, GovernanceError) as exc:
        raise InvalidGenesis(f"{where}: {exc}") from None


def constitution_from_document(document: Any) -> Constitution:
    """A constitution from its JSON form (the module docstring shows it)."""
    if not isinstance(document, dict):
        raise InvalidGenesis("a constitution is a JSON object")
    default = default_constitution()
    terms = document.get("termsHash", "0x" + "00" * 32)
    try:
        terms_hash = bytes.fromhex(terms[2:]) if isinstance(terms, str) and terms.startswith("0x") else b""
    except ValueError:
        terms_hash = b""
    if len(terms_hash) != 32:
        raise InvalidGenesis(f"termsHash: expected 32 bytes in hex, got {terms!r}")
    try:
        return Constitution(
            name=str(document.get("name", default.name)),
            terms_hash=Hash32(terms_hash),
            voting_period=int(document.get("votingPeriod", default.voting_period)),
            default_threshold=threshold_from_text(
                document.get("defaultThreshold", default.default_threshold.describe()), "defaultThreshold"
            ),
            thresholds={
                kind: threshold_from_text(text, f"thresholds.{kind}")
                for kind, text in dict(document.get("thresholds", {})).items()
            },
            vetoes={
                kind: frozenset(_address(a, f"vetoes.{kind}") for a in who)
                for kind, who in dict(document.get("vetoes", {})).items()
            },
        )
    except (GovernanceError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidGenesis):
            raise
        raise InvalidGenesis(f"constitution: {exc}") from None


def constitution_to_document(constitution: Constitution) -> dict[str, Any]:
    return {
        "name": constitution.name,
        "termsHash": "0x" + bytes(constitution.terms_hash).hex(),
        "votingPeriod": constitution.voting_period,
        "defaultThreshold": constitution.default_threshold.describe(),
        "thresholds": {kind: t.describe() for kind, t in sorted(constitution.thresholds.items())},
        "vetoes": {
            kind: ["0x" + a.hex() for a in sorted(who)] for kind, who in sorted(constitution.vetoes.items())
        },
    }


def _config(document: Any) -> NetworkConfig:
    if not isinstance(document, dict):
        raise InvalidGenesis("consortium.config is a JSON object")
    unknown = sorted(set(document) - set(CONFIG_KEYS))
    if unknown:
        raise InvalidGenesis(f"consortium.config: unknown keys {unknown}; known: {sorted(CONFIG_KEYS)}")
    for key, value in document.items():
        if type(value) is not CONFIG_KEYS[key]:
            raise InvalidGenesis(
                f"consortium.config.{key}: expected {CONFIG_KEYS[key].__name__}, got {value!r}"
            )
    try:
        return NetworkConfig(**document)
    except GovernanceError as exc:
        raise InvalidGenesis(f"consortium.config: {exc}") from None


def read_genesis(document: Any) -> GenesisSpec:
    """The network a genesis document describes; InvalidGenesis says what is wrong."""
    if not isinstance(document, dict):
        raise InvalidGenesis("a genesis document is a JSON object")
    if document.get("format", FORMAT) != FORMAT:
        raise InvalidGenesis(f"format: this Conclave reads {FORMAT!r}, not {document['format']!r}")
    consortium = document.get("consortium")
    if not isinstance(consortium, dict) or not consortium.get("members"):
        raise InvalidGenesis("consortium.members: a network needs at least one member")
    members: dict[Address, Member] = {}
    for index, entry in enumerate(consortium["members"]):
        where = f"consortium.members[{index}]"
        if not isinstance(entry, dict):
            raise InvalidGenesis(f"{where}: expected {{address, name}}")
        address = _address(entry.get("address"), f"{where}.address")
        if address in members:
            raise InvalidGenesis(f"{where}: 0x{address.hex()} is listed twice")
        members[address] = Member(
            str(entry.get("name") or f"member {index + 1}"),
            str(entry.get("metadata", "")),
            _recovery_key(address, entry.get("recoveryKey"), f"{where}.recoveryKey"),
        )
    users = {
        _address(u.get("address"), f"consortium.users[{i}]")
        for i, u in enumerate(consortium.get("users", []))
    }
    deployers = {
        _address(u.get("address"), f"consortium.users[{i}]")
        for i, u in enumerate(consortium.get("users", []))
        if u.get("deploy")
    }
    constitution = (
        constitution_from_document(consortium["constitution"])
        if "constitution" in consortium
        else default_constitution()
    )
    governance = GovernanceState(
        members=members,
        constitution=replace(constitution, version=1),
        users=frozenset(users),
        deployers=frozenset(deployers),
        config=_config(consortium.get("config", {})),
        validators=_validators(consortium.get("validators", [])),
        attestation_roots=_keys(consortium.get("attestationRoots", []), "consortium.attestationRoots"),
        measurements=_keys(consortium.get("measurements", []), "consortium.measurements"),
    )
    alloc: dict[Address, GenesisAccount] = {}
    for address_text, account in dict(document.get("alloc", {})).items():
        where = f"alloc.{address_text}"
        try:
            balance = int(account.get("balance", 0))
        except (TypeError, ValueError, AttributeError):
            raise InvalidGenesis(f"{where}.balance: expected a whole number of wei") from None
        if not 0 <= balance < 2**256:
            raise InvalidGenesis(f"{where}.balance: out of range")
        alloc[_address(address_text, where)] = GenesisAccount(balance=balance)
    chain_id = document.get("chainId")
    if chain_id is not None and (type(chain_id) is not int or not 0 < chain_id < 2**64):
        raise InvalidGenesis(f"chainId: expected a positive 64-bit integer, got {chain_id!r}")
    timestamp = document.get("timestamp")
    if timestamp is not None and (type(timestamp) is not int or not 0 <= timestamp < 2**64):
        raise InvalidGenesis(f"timestamp: expected seconds since 1970, a whole number, got {timestamp!r}")
    if governance.validators and timestamp is None:
        raise InvalidGenesis(
            "timestamp: a document that names validators needs one, so that every validator makes "
            "the same genesis block (conclave init --validator writes the time it ran)"
        )
    return GenesisSpec(chain_id=chain_id, alloc=alloc, governance=governance, timestamp=timestamp)


def genesis_document(spec: GenesisSpec) -> dict[str, Any]:
    """The JSON document of `spec` (what `read_genesis` reads back)."""
    state = spec.governance
    defaults = NetworkConfig()
    config = {
        key: getattr(state.config, key)
        for key in CONFIG_KEYS
        if getattr(state.config, key) != getattr(defaults, key)
    }
    document: dict[str, Any] = {"format": FORMAT}
    if spec.chain_id is not None:
        document["chainId"] = spec.chain_id
    if spec.timestamp is not None:
        document["timestamp"] = spec.timestamp
    document["alloc"] = {
        "0x" + a.hex(): {"balance": str(acc.balance)} for a, acc in sorted(spec.alloc.items())
    }
    document["consortium"] = {
        "members": [
            {"address": "0x" + a.hex(), "name": m.name, "metadata": m.metadata}
            | ({"recoveryKey": "0x" + m.recovery_key.hex()} if m.recovery_key else {})
            for a, m in sorted(state.members.items())
        ],
        "users": [{"address": "0x" + a.hex(), "deploy": a in state.deployers} for a in sorted(state.users)],
        "constitution": constitution_to_document(state.constitution),
        "config": config,
    }
    if state.validators:
        document["consortium"]["validators"] = [
            {"address": "0x" + a.hex(), "endpoint": v.endpoint}
            | ({"measurement": "0x" + v.measurement.hex()} if v.measurement else {})
            for a, v in sorted(state.validators.items())
        ]
    if state.attestation_roots:
        document["consortium"]["attestationRoots"] = ["0x" + r.hex() for r in sorted(state.attestation_roots)]
    if state.measurements:
        document["consortium"]["measurements"] = ["0x" + m.hex() for m in sorted(state.measurements)]
    return document
