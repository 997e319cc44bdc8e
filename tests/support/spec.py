"""Access to the vendored Ethereum execution JSON-RPC spec (ethereum/execution-apis).

The spec lives in ``tests/spec/execution-apis/src`` as OpenRPC-style YAML:

* ``<namespace>/*.yaml`` (``eth/``, ``debug/``, ``txpool/``, ...): lists of
  methods with ``name``, ``params`` (``name``, ``required``, ``schema``),
  ``result`` (``name``, ``schema``), optional ``errors`` / ``error-groups`` and
  ``examples``.
* ``schemas/*.yaml``: component schemas; every top-level key is a schema name,
  referenced as ``{"$ref": "#/components/schemas/<Name>"}``.
* ``error-groups/*.yaml``: named groups of error codes, referenced from a
  method's ``error-groups`` list as ``#/components/error-groups/<GroupName>``.

Usage::

    from tests.support.spec import load_spec, validate_result, validate_params

    validate_params("eth_getBalance", ["0x" + "00" * 20, "latest"])
    validate_result("eth_getBalance", "0x1")       # raises AssertionError if invalid

    spec = load_spec()
    spec.method("eth_getBlockByNumber").error_codes  # {4444}

Schemas are evaluated as JSON Schema Draft 2020-12.  The spec only uses
keywords that mean the same in Draft 7+, but it puts ``title``/``description``
next to ``$ref`` everywhere, which Draft 7 would ignore and 2020-12 keeps (the
error messages below use those titles).

``$ref`` resolution goes through a :class:`referencing.Registry` holding one
resource, the *components document* ``{"components": {"schemas": ...,
"error-groups": ...}}`` under :data:`COMPONENTS_URI`.  Refs inside component
schemas stay as written (``#/components/...``, relative to that document);
refs in method-level schemas are rewritten to absolute
``COMPONENTS_URI#/components/...``.  Recursive references therefore work and
no schema is ever inlined.  A method schema is validated with
``spec.validator(schema)`` (or plain ``jsonschema.validate(x, schema,
registry=spec.registry)``, which lacks the ``pattern`` fix below).

Deviations from the literal spec are deliberately few and all live here:

* :data:`ONEOF_AS_ANYOF`: ``oneOf`` schemas whose alternatives overlap, so
  that correct values would fail; evaluated as ``anyOf``.
* :func:`_ecma_regex`: ECMA-262 (not Python) ``$`` semantics for ``pattern``.
* ``_NON_METHOD_DIRS``: ``testing_*`` methods are not loaded (they depend on
  Engine API schemas that are not vendored).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import best_match, relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "COMPONENTS_URI",
    "ONEOF_AS_ANYOF",
    "SPEC_ROOT",
    "ExampleSpec",
    "MethodSpec",
    "ParamSpec",
    "Spec",
    "load_spec",
    "validate_params",
    "validate_result",
]

#: Root of the vendored spec (``src/`` of ethereum/execution-apis).
SPEC_ROOT = Path(__file__).resolve().parent.parent / "spec" / "execution-apis" / "src"

#: Base URI under which the component schemas and error groups are registered.
COMPONENTS_URI = "urn:execution-apis:components"

_SCHEMA_DIR = "schemas"
_ERROR_GROUP_DIR = "error-groups"

#: Directories under SPEC_ROOT that do not hold user-facing JSON-RPC methods.
#: * ``engine``: the consensus-layer Engine API (not served by Conclave, and
#:   not vendored anyway).
#: * ``testing``: ``testing_buildBlockV1``, a fixture generator for client test
#:   suites.  Its result references Engine API component schemas
#:   (``ExecutionPayloadV3``, ``BlobsBundleV2``) defined under ``src/engine/``,
#:   so it cannot be resolved from the vendored files.
#: Every other directory (eth, debug, txpool and any namespace added upstream
#: later) is loaded as a method directory.
_NON_METHOD_DIRS = frozenset({_SCHEMA_DIR, _ERROR_GROUP_DIR, "engine", "testing"})

#: Component schemas whose ``oneOf`` is evaluated as ``anyOf``.
#:
#: ``oneOf`` fails when an instance matches *more than one* alternative.  For
#: these schemas the alternatives overlap, so objects that are correct per the
#: spec's own prose (and that every client returns) would be rejected:
ONEOF_AS_ANYOF: Mapping[str, str] = {
    # Alternatives are "array of hash32" and "array of Log".  The empty array
    # -- the most common eth_getFilterChanges / eth_getLogs result -- matches
    # both.
    "FilterResults": "[] matches both the hash list and the log list",
    # Transaction4844UnsignedWithSidecar is allOf[Transaction4844Unsigned,
    # {blobs, commitments, proofs}] and Transaction4844Unsigned does not forbid
    # additional properties, so every blob transaction *with* a sidecar matches
    # both of those alternatives.
    "FilledTransaction": "a 4844 tx with sidecar also matches Transaction4844Unsigned",
}

_MAX_VALUE_CHARS = 120
_MAX_BRANCH_ERRORS = 3


# --------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------


class ParamSpec(NamedTuple):
    """One positional parameter of a method: ``(name, required, schema)``."""

    name: str
    required: bool
    schema: dict[str, Any]


@dataclass(frozen=True)
class ExampleSpec:
    """One example call from the spec: positional param values and the result."""

    name: str
    params: tuple[Any, ...]
    result: Any


@dataclass(frozen=True)
class MethodSpec:
    """A JSON-RPC method as described by the spec.

    Schemas are ready to validate with :meth:`Spec.validator` (their refs point
    into :attr:`Spec.registry`).
    """

    name: str
    params: tuple[ParamSpec, ...]
    result_name: str
    result_schema: dict[str, Any]
    error_codes: frozenset[int]
    examples: tuple[ExampleSpec, ...]
    source: str  # file relative to SPEC_ROOT, e.g. "eth/state.yaml"


# --------------------------------------------------------------------------
# Validator: Draft 2020-12 with ECMA-262 anchors for "pattern"
# --------------------------------------------------------------------------


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """Compile a JSON Schema ``pattern`` with ECMA-262 end-of-input semantics.

    JSON Schema patterns are ECMA-262 regexes.  In Python, a trailing ``$``
    also matches *before a final newline*, so ``^0x[0-9a-f]*$`` would accept
    ``"0x00\\n"``.  The spec anchors all hex patterns with ``$``, so translate
    a trailing unescaped ``$`` into ``\\Z`` (true end of string).
    """
    body = pattern[:-1]
    if pattern.endswith("$") and (len(body) - len(body.rstrip("\\"))) % 2 == 0:
        pattern = body + r"\Z"
    return re.compile(pattern)


def _pattern_keyword(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern_keyword})


# --------------------------------------------------------------------------
# The loaded spec
# --------------------------------------------------------------------------


class Spec:
    """The whole vendored spec: methods, component schemas and error groups."""

    def __init__(
        self,
        methods: Mapping[str, MethodSpec],
        schemas: Mapping[str, dict[str, Any]],
        error_groups: Mapping[str, dict[str, Any]],
    ) -> None:
        self._methods = dict(methods)
        self.schemas: Mapping[str, dict[str, Any]] = schemas
        self.error_groups: Mapping[str, dict[str, Any]] = error_groups
        document = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": COMPONENTS_URI,
            "components": {"schemas": dict(schemas), "error-groups": dict(error_groups)},
        }
        self.registry: Registry = (
            Registry()
            .with_resource(
                COMPONENTS_URI, Resource.from_contents(document, default_specification=DRAFT202012)
            )
            .crawl()
        )

    # -- lookup -----------------------------------------------------------

    def method_names(self) -> list[str]:
        """All method names, sorted."""
        return sorted(self._methods)

    def method(self, name: str) -> MethodSpec:
        """The method called ``name``; ``KeyError`` if the spec has none."""
        try:
            return self._methods[name]
        except KeyError:
            raise KeyError(f"method {name!r} is not in the execution-apis spec") from None

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def schema(self, name: str) -> dict[str, Any]:
        """A component schema by name, as a ref usable with :meth:`validator`."""
        if name not in self.schemas:
            raise KeyError(f"no component schema {name!r}")
        return {"$ref": f"{COMPONENTS_URI}#/components/schemas/{name}"}

    def validator(self, schema: Mapping[str, Any]):
        """A Draft 2020-12 validator for ``schema`` that resolves spec refs.

        ``schema`` may be any schema returned by this module, a component ref
        from :meth:`schema`, or your own schema using absolute refs into
        :data:`COMPONENTS_URI`.
        """
        return _Validator(schema, registry=self.registry)

    # -- validation ---------------------------------------------------------

    def validate_result(self, method: str, result: Any) -> None:
        """Assert that ``result`` is a valid result of ``method``."""
        spec = self.method(method)
        self._check(spec.result_schema, result, f"{method} result", spec.result_name)

    def validate_params(self, method: str, params: Sequence[Any] | None) -> None:
        """Assert that ``params`` (positional, as sent in a request) are valid.

        Trailing optional params may be omitted (``None`` stands for an
        omitted ``params`` member, i.e. no params); a param that is sent must
        match its schema (``null`` only where the schema allows it).
        """
        spec = self.method(method)
        if params is None:
            params = []
        if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
            raise AssertionError(f"{method} params: expected a positional list, got {_show(params)}")
        if len(params) > len(spec.params):
            raise AssertionError(
                f"{method} params: got {len(params)} params, the spec defines "
                f"{len(spec.params)} ({', '.join(p.name for p in spec.params) or 'none'})"
            )
        for index, param in enumerate(spec.params):
            if index >= len(params):
                if param.required:
                    raise AssertionError(f"{method} params: missing required param #{index} ({param.name!r})")
                continue
            self._check(param.schema, params[index], f"{method} param #{index}", param.name)

    def _check(self, schema: Mapping[str, Any], instance: Any, what: str, name: str) -> None:
        errors = list(self.validator(schema).iter_errors(instance))
        if not errors:
            return
        error = best_match(errors)
        lines = [
            f"{what} ({name}) does not match the spec:",
            f"  at {error.json_path}: {_message(error)}",
            f"  value: {_show(error.instance)}",
            f"  schema: {self._title_trail(schema, error) or name}",
        ]
        lines += self._alternatives(error, indent="  ", depth=0)
        others = _count_siblings(errors, error)
        if others:
            lines.append(f"  (+{others} other error(s) elsewhere in the value)")
        raise AssertionError("\n".join(lines))

    def _alternatives(self, error: ValidationError, indent: str, depth: int) -> list[str]:
        """For a failed ``oneOf``/``anyOf``: why each alternative was rejected.

        ``best_match`` only descends into one alternative when it is clearly
        the most relevant; otherwise (e.g. a transaction matching none of the
        five typed transaction schemas) list the top errors of each branch.
        """
        if not error.context or depth >= 3:
            return []
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        lines = [f"{indent}alternatives:"]
        for index, alternative in enumerate(error.validator_value):
            label = f"{indent}  [{index}] {self._schema_label(alternative)}"
            ranked = sorted(branches.get(index, ()), key=relevance, reverse=True)
            if not ranked:
                lines.append(f"{label}: matches")
                continue
            shown = [_brief(sub) for sub in ranked[:_MAX_BRANCH_ERRORS]]
            if len(ranked) > _MAX_BRANCH_ERRORS:
                shown.append(f"+{len(ranked) - _MAX_BRANCH_ERRORS} more")
            lines.append(f"{label}: {'; '.join(shown)}")
            lines += self._alternatives(ranked[0], indent + "      ", depth + 1)
        return lines

    def _resolve(self, ref: str) -> Any:
        # Relative refs only occur inside the components document.
        return self.registry.resolver(COMPONENTS_URI).lookup(ref).contents

    def _schema_label(self, schema: Any) -> str:
        """Title of a schema, following a bare ``$ref`` if needed."""
        if not isinstance(schema, Mapping):
            return repr(schema)
        if isinstance(schema.get("title"), str):
            return schema["title"]
        ref = schema.get("$ref")
        if isinstance(ref, str):
            try:
                target = self._resolve(ref)
            except LookupError:
                target = {}
            return target.get("title") or ref.rsplit("/", 1)[-1]
        return "(untitled)"

    def _title_trail(self, schema: Mapping[str, Any], error: ValidationError) -> str:
        """Titles of the schemas on the way to the failing keyword, outermost first.

        Returns ``""`` if none of them has a title.

        Walks ``error.absolute_schema_path`` from the validated schema.  That
        path does not mention ``$ref`` hops, so a ``$ref`` is followed
        whenever the next keyword is not in the current schema.
        """
        titles: list[str] = []

        def note(node: Any) -> None:
            title = node.get("title") if isinstance(node, Mapping) else None
            if isinstance(title, str) and (not titles or titles[-1] != title):
                titles.append(title)

        node: Any = schema
        try:
            for key in error.absolute_schema_path:
                while isinstance(node, Mapping) and key not in node and "$ref" in node:
                    note(node)
                    node = self._resolve(node["$ref"])
                note(node)
                node = self._resolve(node["$ref"]) if key == "$ref" else node[key]
        except (KeyError, IndexError, TypeError, LookupError):
            pass
        note(error.schema)
        return " › ".join(titles)


def _brief(error: ValidationError) -> str:
    """``message`` prefixed by the instance path relative to the parent error."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.relative_path)
    return f"{where}: {_message(error)}" if where else _message(error)


def _message(error: ValidationError) -> str:
    """The validator's message, with long instance reprs shortened."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        return f"matches none of the {len(error.validator_value)} alternatives ({error.validator})"
    if error.validator == "oneOf":
        return "matches more than one alternative of a oneOf"
    message = error.message
    instance_repr = repr(error.instance)
    if len(instance_repr) > 100 and instance_repr in message:
        message = message.replace(instance_repr, "<value>")
    if len(message) > 300:
        message = message[:299] + "…"
    return message


def _show(value: Any) -> str:
    """A compact, truncated rendering of a JSON value."""
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 1] + "…"
    return f"{text} ({type(value).__name__})"


def _count_siblings(errors: list[ValidationError], best: ValidationError) -> int:
    """How many other errors there are besides the reported one.

    Counts the other top-level errors plus, inside each ``oneOf``/``anyOf`` on
    the way down to ``best``, the other errors of the *same* alternative
    (errors of rejected alternatives are not real problems of the value).
    """
    chain = []
    node: ValidationError | None = best
    while node is not None:
        chain.append(node)
        node = node.parent
    count = 0
    level = errors
    for node in reversed(chain):
        count += sum(
            1
            for other in level
            if other is not node
            and (node.parent is None or other.relative_schema_path[0] == node.relative_schema_path[0])
        )
        level = list(node.context)
    return count


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


# libyaml's loader is ~5x faster when available; same semantics as SafeLoader.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_YAML_LOADER)


def _absolutize(node: Any) -> Any:
    """Copy of a method-level schema with ``#/components/...`` refs made absolute."""
    if isinstance(node, dict):
        out = {key: _absolutize(value) for key, value in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            out["$ref"] = COMPONENTS_URI + ref
        return out
    if isinstance(node, list):
        return [_absolutize(item) for item in node]
    return node


def _load_schemas(root: Path) -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted((root / _SCHEMA_DIR).glob("*.yaml")):
        for name, schema in (_read_yaml(path) or {}).items():
            if name in schemas:
                raise ValueError(f"component schema {name!r} defined twice ({path.name})")
            schemas[name] = schema
    for name in ONEOF_AS_ANYOF:
        schema = dict(schemas.get(name) or {})
        if "oneOf" not in schema:
            raise ValueError(f"ONEOF_AS_ANYOF: {name!r} has no oneOf any more; drop the entry")
        schema["anyOf"] = schema.pop("oneOf")
        schemas[name] = schema
    return schemas


def _load_error_groups(root: Path) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for path in sorted((root / _ERROR_GROUP_DIR).glob("*.yaml")):
        for name, group in (_read_yaml(path) or {}).items():
            if name in groups:
                raise ValueError(f"error group {name!r} defined twice ({path.name})")
            groups[name] = group
    return groups


def _error_codes(raw: Mapping[str, Any], groups: Mapping[str, Any], where: str) -> frozenset[int]:
    codes = {int(error["code"]) for error in raw.get("errors") or ()}
    prefix = "#/components/error-groups/"
    for ref in raw.get("error-groups") or ():
        target = ref["$ref"]
        if not target.startswith(prefix) or target[len(prefix) :] not in groups:
            raise ValueError(f"{where}: unresolvable error group {target!r}")
        codes.update(int(error["code"]) for error in groups[target[len(prefix) :]]["errors"])
    return frozenset(codes)


def _load_method(raw: Mapping[str, Any], groups: Mapping[str, Any], source: str) -> MethodSpec:
    name = raw["name"]
    params = tuple(
        ParamSpec(
            name=p["name"],
            required=bool(p.get("required", False)),  # OpenRPC default: optional
            schema=_absolutize(p["schema"]),
        )
        for p in raw.get("params") or ()
    )
    # Example params are matched to the method's params by position: names in
    # examples differ in case from the declared ones in a few places
    # (e.g. "newestblock" vs "newestBlock").
    examples = tuple(
        ExampleSpec(
            name=ex["name"],
            params=tuple(p["value"] for p in ex.get("params") or ()),
            result=ex["result"]["value"],
        )
        for ex in raw.get("examples") or ()
    )
    return MethodSpec(
        name=name,
        params=params,
        result_name=raw["result"]["name"],
        result_schema=_absolutize(raw["result"]["schema"]),
        error_codes=_error_codes(raw, groups, f"{source}:{name}"),
        examples=examples,
        source=source,
    )


def load_spec(root: Path | str | None = None) -> Spec:
    """Load (once per root) every method, component schema and error group.

    ``root`` defaults to the vendored spec, :data:`SPEC_ROOT`.
    """
    return _load_spec(Path(root or SPEC_ROOT).resolve())


@functools.cache
def _load_spec(root: Path) -> Spec:
    schemas = _load_schemas(root)
    groups = _load_error_groups(root)
    methods: dict[str, MethodSpec] = {}
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        if directory.name in _NON_METHOD_DIRS:
            continue
        for path in sorted(directory.glob("*.yaml")):
            source = path.relative_to(root).as_posix()
            for raw in _read_yaml(path) or ():
                method = _load_method(raw, groups, source)
                if method.name in methods:
                    raise ValueError(f"method {method.name!r} defined twice ({source})")
                methods[method.name] = method
    return Spec(methods, schemas, groups)


def validate_result(method: str, result: Any) -> None:
    """Raise ``AssertionError`` unless ``result`` is a valid ``method`` result."""
    load_spec().validate_result(method, result)


def validate_params(method: str, params: Sequence[Any] | None) -> None:
    """Raise ``AssertionError`` unless ``params`` are valid ``method`` params."""
    load_spec().validate_params(method, params)
