"""Who is asking: Sign-In with Ethereum (EIP-4361) logins and the tokens they earn.

A reader asks for a nonce (`Authenticator.challenge`), signs an EIP-4361 message that
carries it with its wallet (EIP-191 `personal_sign`), and trades message and signature
for a login token (`Authenticator.login`); every later request carries the token, and
`Authenticator.viewer` says which address it names. Only the enclave issues and checks
tokens: the host carries them and learns nothing it could forge one with.

The message (`parse_message`) is parsed here, strictly, by the ABNF of EIP-4361, and its
signature checked with eth_account (`encode_defunct` + `Account.recover_message`). The
`siwe` package was not used: its newest release (4.4.0) requires eth-account < 0.14 and
web3 < 8 (this project pins eth-account 0.14.0 and web3 8.0.0, so installing it
downgrades them and leaves `pip check` broken), imports web3 at run time (a test-only
dependency here; siwe uses it for EIP-1271 contract wallets), and its grammar no longer
imports with abnf 2.9 (it redefines the core rule ALPHA). Only accounts with a key
(EOAs) sign in; contract wallets (EIP-1271) do not.

A login is refused (`Unauthenticated`, with what to do about it) unless:
- the signature recovers the address the message names (EIP-55 checksummed);
- its nonce is one this authenticator issued, not older than `NONCE_LIFETIME`, and not
  used by an earlier login (each nonce signs in once);
- its domain is the one the request was sent to (the gateway passes the Host header),
  its chain id is this chain's, its version is 1;
- its `Expiration Time` has not passed, its `Not Before` has, and it was not issued in
  the future (`MAX_CLOCK_SKEW` of leeway for wallets' clocks).

Nonces live in memory only, at most `MAX_NONCES` of them (past that the oldest is
dropped): an enclave restart forgets them, and who asked for one signs in again.

Tokens are JSON Web Tokens (RFC 7519, PyJWT) MAC'd with HMAC-SHA256 (`HS256`, the only
algorithm accepted) under a key derived with HKDF-SHA256 from the node's identity key
(`token_key`), which only the enclave holds and keeps sealed (`enclave.keystore`): tokens
survive an enclave or node restart, and another node's tokens are refused. Claims:
`iss` "conclave-node:0x<this node's address>", `sub` the checksummed address signed in,
`iat` (Unix seconds, to the millisecond) and `exp` (Unix seconds). A token lasts
`TOKEN_LIFETIME` (24 hours), or less if the message's `Expiration Time` comes sooner.

Signing out (`sign_out`) refuses, from then on, every token issued to that address until
then, on every device: the address and the time are kept sealed in the enclave's directory
(`SIGN_OUTS_FILE`, AES-GCM under a key derived from the token key), so they hold across
restarts, for a token lifetime (older tokens have expired anyway), at most `MAX_SIGN_OUTS`.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address, to_checksum_address
from jwt.utils import base64url_decode, base64url_encode

from evm_runtime.exceptions import Unauthenticated
from evm_runtime.types import Address

from .identity import NodeIdentity
from .interface import AuthSession
from .keystore import write_atomically
from .sealing import UnsealError, seal, unseal

TOKEN_LIFETIME = 24 * 3600
"""Seconds a login token lasts at most."""
NONCE_LIFETIME = 5 * 60
"""Seconds a nonce from `challenge` may be signed in with."""
MAX_NONCES = 10_000
"""Nonces kept at once; past that the oldest is forgotten."""
MAX_CLOCK_SKEW = 60
"""Seconds a message's `Issued At` may be ahead of the enclave's clock."""
MAX_MESSAGE_CHARS = 8 * 1024
MAX_TOKEN_CHARS = 2048
TOKEN_ALGORITHM = "HS256"
TOKEN_KEY_INFO = b"conclave/login-token-key/v1"
SIGN_OUTS_FILE = "sign-outs.sealed"
SIGN_OUTS_INFO = b"conclave/sign-outs/v1"
MAX_SIGN_OUTS = 100_000
"""Addresses signed out within a token lifetime that are remembered; past that signing out
is refused until older ones lapse (forgetting one would bring its tokens back)."""
SIGN_IN_AGAIN = "sign in again via /auth/nonce and /auth/login"

log = logging.getLogger(__name__)

PREAMBLE = " wants you to sign in with your Ethereum account:"

# The productions of EIP-4361's ABNF (and the RFC 3986 / RFC 3339 rules it borrows).
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_AUTHORITY = re.compile(
    rf"(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|%[0-9A-Fa-f]{{2}})*@)?"
    rf"(?:\[[0-9A-Fa-f:.]+\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|%[0-9A-Fa-f]{{2}})+)(?::[0-9]*)?"
)
_ADDRESS = re.compile(r"0x[0-9A-Fa-f]{40}")
_STATEMENT = re.compile(rf"[{_UNRESERVED}{_SUB_DELIMS}:/?#\[\]@ ]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[\x21-\x7e]*")
_CHAIN_ID = re.compile(r"[0-9]{1,20}")
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
_DATE_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?P<fraction>\.[0-9]+)?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_REQUEST_ID = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|%[0-9A-Fa-f]{{2}})*")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class MalformedMessage(ValueError):
    """Text that is not an EIP-4361 message; the reason names the line."""


@dataclass(frozen=True, slots=True)
class SiweMessage:
    """An EIP-4361 message, its fields as the text spells them."""

    domain: str
    address: str
    """EIP-55 checksummed."""
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    """RFC 3339, as are `expiration_time` and `not_before`."""
    version: str = "1"
    scheme: str | None = None
    statement: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()

    def text(self) -> str:
        """The message to sign, as EIP-4361 lays it out."""
        origin = self.domain if self.scheme is None else f"{self.scheme}://{self.domain}"
        lines = [origin + PREAMBLE, self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += [
            "",
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        optional = (
            ("Expiration Time", self.expiration_time),
            ("Not Before", self.not_before),
            ("Request ID", self.request_id),
        )
        lines += [f"{name}: {value}" for name, value in optional if value is not None]
        if self.resources:
            lines += ["Resources:", *(f"- {resource}" for resource in self.resources)]
        return "\n".join(lines)


def rfc3339(moment: float) -> str:
    """Unix time as an RFC 3339 UTC date-time, whole seconds (`2025-01-02T03:04:05Z`)."""
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """Unix time of an RFC 3339 date-time; ValueError if it is not one."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time (e.g. 2025-01-02T03:04:05Z)")
    fraction = (match["fraction"] or "")[:7]  # Python reads at most microseconds
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['time']}{fraction}{zone}").timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date-time") from None


def _when(moment: float) -> str:
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_message(text: str) -> SiweMessage:
    """The EIP-4361 message `text` spells, checked field by field; MalformedMessage if it is not one."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise MalformedMessage(f"longer than {MAX_MESSAGE_CHARS} characters")
    if "\r" in text:
        raise MalformedMessage("lines end with LF (\\n) alone, not CR LF")
    lines = text.split("\n")
    if len(lines) < 9:
        raise MalformedMessage("too few lines: expected at least 9 (see EIP-4361's message format)")

    def fail(index: int, what: str) -> MalformedMessage:
        return MalformedMessage(f"line {index + 1} ({lines[index][:60]!r}): {what}")

    if not lines[0].endswith(PREAMBLE):
        raise fail(0, f"expected '<domain>{PREAMBLE}'")
    origin = lines[0][: -len(PREAMBLE)]
    scheme, _, domain = origin.rpartition("://")
    if scheme and not _SCHEME.fullmatch(scheme):
        raise fail(0, f"{scheme!r} is not a URI scheme")
    if not _AUTHORITY.fullmatch(domain):
        raise fail(0, f"{domain!r} is not a domain (an RFC 3986 authority, e.g. example.com:8545)")
    address = lines[1]
    if not _ADDRESS.fullmatch(address):
        raise fail(1, "expected the address: 0x and 40 hex digits")
    if not is_checksum_address(address):
        raise fail(1, f"the address must be EIP-55 checksummed: {to_checksum_address(address)}")
    if lines[2] != "":
        raise fail(2, "expected an empty line after the address")
    index, statement = 4, None
    if lines[3] != "":
        statement, index = lines[3], 5
        if not _STATEMENT.fullmatch(statement):
            raise fail(3, "a statement holds letters, digits, spaces and URI punctuation only")
        if lines[4] != "":
            raise fail(4, "expected an empty line after the statement")

    def field(name: str, pattern: re.Pattern[str], required: bool) -> str | None:
        nonlocal index
        prefix = f"{name}: "
        if index < len(lines) and lines[index].startswith(prefix):
            value = lines[index][len(prefix) :]
            if not pattern.fullmatch(value):
                raise fail(index, f"not a valid {name}")
            index += 1
            return value
        if required:
            raise MalformedMessage(
                f"line {index + 1}: expected {prefix!r}"
                + (f", got {lines[index][:60]!r}" if index < len(lines) else ", got the end")
            )
        return None

    uri = field("URI", _URI, True)
    version = field("Version", re.compile("1"), True)
    chain_id = field("Chain ID", _CHAIN_ID, True)
    nonce = field("Nonce", _NONCE, True)
    issued_at = field("Issued At", _DATE_TIME, True)
    expiration_time = field("Expiration Time", _DATE_TIME, False)
    not_before = field("Not Before", _DATE_TIME, False)
    request_id = field("Request ID", _REQUEST_ID, False)
    resources: list[str] = []
    if index < len(lines) and lines[index] == "Resources:":
        index += 1
        while index < len(lines) and lines[index].startswith("- "):
            if not _URI.fullmatch(lines[index][2:]):
                raise fail(index, "a resource is '- ' and a URI")
            resources.append(lines[index][2:])
            index += 1
    if index < len(lines):
        raise fail(index, "unexpected line (or a field out of EIP-4361's order)")
    assert uri is not None and version is not None and chain_id is not None
    assert nonce is not None and issued_at is not None
    for moment in (issued_at, expiration_time, not_before):
        if moment is not None:
            try:
                parse_time(moment)
            except ValueError as exc:
                raise MalformedMessage(str(exc)) from None
    return SiweMessage(
        domain=domain,
        address=address,
        uri=uri,
        chain_id=int(chain_id),
        nonce=nonce,
        issued_at=issued_at,
        version=version,
        scheme=scheme or None,
        statement=statement,
        expiration_time=expiration_time,
        not_before=not_before,
        request_id=request_id,
        resources=tuple(resources),
    )


def token_key(identity_secret: bytes) -> bytes:
    """The key login tokens are MAC'd with: HKDF-SHA256 of the node's identity key."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=TOKEN_KEY_INFO).derive(identity_secret)


def issuer_of(address: Address) -> str:
    return f"conclave-node:0x{address.hex()}"


class Authenticator:
    """Issues nonces, checks EIP-4361 logins, issues and checks login tokens, for one node."""

    def __init__(
        self,
        key: bytes,
        chain_id: int,
        node_address: Address,
        *,
        clock: Callable[[], float] = time.time,
        token_lifetime: int = TOKEN_LIFETIME,
        nonce_lifetime: int = NONCE_LIFETIME,
        max_nonces: int = MAX_NONCES,
        sign_outs: Path | None = None,
    ) -> None:
        """`key` MACs the tokens (`token_key`); `clock` tells Unix time (tests pass their own);
        `sign_outs` is the file sign-outs are kept in (None: memory only)."""
        if len(key) < 32:
            raise ValueError("a token key has at least 32 bytes")
        self._key = key
        self._chain_id = chain_id
        self._issuer = issuer_of(node_address)
        self._clock = clock
        self._token_lifetime = token_lifetime
        self._nonce_lifetime = nonce_lifetime
        self._max_nonces = max_nonces
        self._nonces: OrderedDict[str, float] = OrderedDict()
        """Each outstanding nonce and when it expires, oldest first."""
        self._lock = threading.Lock()
        self._sign_outs_path = sign_outs
        self._sign_outs_key = HKDF(algorithm=SHA256(), length=32, salt=None, info=SIGN_OUTS_INFO).derive(key)
        self._signed_out: dict[str, float] = self._load_sign_outs()
        """Per address (checksummed): when it last signed out."""

    @classmethod
    def for_identity(
        cls,
        identity: NodeIdentity,
        chain_id: int,
        *,
        clock: Callable[[], float] = time.time,
        directory: Path | None = None,
    ) -> Authenticator:
        """The authenticator of the node whose identity key is `identity`, keeping sign-outs
        in `directory` (the enclave's; None: in memory)."""
        sign_outs = None if directory is None else directory / SIGN_OUTS_FILE
        key = token_key(identity.key.secret)
        return cls(key, chain_id, identity.address, clock=clock, sign_outs=sign_outs)

    # -- nonces ---------------------------------------------------------------------------

    def challenge(self) -> str:
        """A fresh nonce (32 hex digits) for one login within `nonce_lifetime` seconds."""
        nonce = secrets.token_hex(16)
        now = self._clock()
        with self._lock:
            while self._nonces and (
                len(self._nonces) >= self._max_nonces or next(iter(self._nonces.values())) <= now
            ):
                self._nonces.popitem(last=False)
            self._nonces[nonce] = now + self._nonce_lifetime
        return nonce

    def _take_nonce(self, nonce: str, now: float) -> None:
        with self._lock:
            expires = self._nonces.pop(nonce, None)
        if expires is None:
            raise Unauthenticated(
                f"nonce {nonce[:40]} was not issued by this node, or was used already (each signs in once): "
                "ask /auth/nonce for a new one and sign again"
            )
        if expires <= now:
            raise Unauthenticated(
                f"nonce {nonce} expired at {_when(expires)} (nonces last {self._nonce_lifetime} s): "
                "ask /auth/nonce for a new one and sign again"
            )

    # -- logins ---------------------------------------------------------------------------

    def login(self, message: str, signature: bytes, domain: str) -> AuthSession:
        """A token for the address that signed `message`, an EIP-4361 message sent to `domain`."""
        try:
            parsed = parse_message(message)
        except MalformedMessage as exc:
            raise Unauthenticated(f"the sign-in message is not an EIP-4361 message: {exc}") from None
        now = self._clock()
        if parsed.domain.lower() != domain.lower():
            raise Unauthenticated(
                f"the message signs in to {parsed.domain[:100]!r} but was sent to {domain[:100]!r}: "
                f"sign a message whose domain is {domain[:100]}"
            )
        if parsed.chain_id != self._chain_id:
            raise Unauthenticated(
                f"the message is for chain id {parsed.chain_id}, this chain's is {self._chain_id}: "
                "sign a message with this chain's id"
            )
        if parse_time(parsed.issued_at) > now + MAX_CLOCK_SKEW:
            raise Unauthenticated(
                f"the message was issued in the future ({parsed.issued_at}; the node's time is "
                f"{rfc3339(now)}): check the wallet's clock and sign again"
            )
        expires_at = now + self._token_lifetime
        if parsed.expiration_time is not None:
            expiration = parse_time(parsed.expiration_time)
            if expiration <= now:
                raise Unauthenticated(
                    f"the message expired at {parsed.expiration_time}: sign a new one (/auth/nonce)"
                )
            expires_at = min(expires_at, expiration)
        if parsed.not_before is not None and parse_time(parsed.not_before) > now:
            raise Unauthenticated(f"the message is not valid before {parsed.not_before}: send it then")
        signer = _recover(message, signature)
        if signer != parsed.address:
            raise Unauthenticated(
                f"the signature is by {signer}, not by {parsed.address}, the account the message "
                "names: sign with that account's key"
            )
        self._take_nonce(parsed.nonce, now)
        issued = round(now, 3)
        expiry = int(expires_at)
        claims = {"iss": self._issuer, "sub": parsed.address, "iat": issued, "exp": expiry}
        token = jwt.encode(claims, self._key, algorithm=TOKEN_ALGORITHM)
        return AuthSession(token, Address(bytes.fromhex(parsed.address[2:])), expiry)

    # -- tokens ---------------------------------------------------------------------------

    def viewer(self, token: str | None) -> Address | None:
        """The address `token` names (None for None); Unauthenticated if it is refused."""
        if token is None:
            return None
        if len(token) > MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token) or not _canonical_signature(token):
            raise Unauthenticated(
                f"malformed login token (not one this node issues): {SIGN_IN_AGAIN}, and send the "
                "token it answers as 'Authorization: Bearer <token>' or in the URL as /rpc/<token>"
            )
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise Unauthenticated(
                f"malformed login token (its claims do not decode): {SIGN_IN_AGAIN}"
            ) from None
        issuer = unverified.get("iss")
        if issuer != self._issuer:
            raise Unauthenticated(
                f"token not issued by this node (it names {str(issuer)[:80]!r}): sign in to this node "
                "via /auth/nonce and /auth/login"
            )
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[TOKEN_ALGORITHM],
                issuer=self._issuer,
                options={"require": ["iss", "sub", "iat", "exp"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise Unauthenticated(
                f"token not issued by this node, or altered (its MAC does not match): {SIGN_IN_AGAIN}"
            ) from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid login token ({exc}): {SIGN_IN_AGAIN}") from None
        expiry, subject, issued = claims["exp"], claims["sub"], claims["iat"]
        if (
            not isinstance(expiry, int)
            or not isinstance(issued, int | float)
            or not isinstance(subject, str)
            or not _ADDRESS.fullmatch(subject)
        ):
            raise Unauthenticated(f"invalid login token (bad claims): {SIGN_IN_AGAIN}")
        if self._clock() >= expiry:
            raise Unauthenticated(f"token expired at {_when(expiry)}: {SIGN_IN_AGAIN}")
        signed_out = self._signed_out.get(subject)
        if signed_out is not None and issued <= signed_out:
            raise Unauthenticated(f"{subject} signed out at {_when(signed_out)}: {SIGN_IN_AGAIN}")
        return Address(bytes.fromhex(subject[2:]))

    # -- signing out ----------------------------------------------------------------------

    def sign_out(self, token: str) -> tuple[Address, float]:
        """Refuse every token issued so far to the address `token` names (which must be
        valid): that address and when it signed out."""
        address = self.viewer(token)
        assert address is not None
        subject, now = to_checksum_address(address), self._clock()
        with self._lock:
            kept = {a: at for a, at in self._signed_out.items() if at > now - self._token_lifetime}
            if subject not in kept and len(kept) >= MAX_SIGN_OUTS:
                raise Unauthenticated(
                    f"this node keeps {MAX_SIGN_OUTS} recent sign-outs and has no room now: try again "
                    "later (or let the tokens expire)"
                )
            kept[subject] = now
            self._save_sign_outs(kept)
            self._signed_out = kept
        return address, now

    def _load_sign_outs(self) -> dict[str, float]:
        path = self._sign_outs_path
        if path is None or not path.exists():
            return {}
        try:
            kept = json.loads(unseal(self._sign_outs_key, path.read_bytes(), SIGN_OUTS_INFO))
            return {str(address): float(at) for address, at in kept.items()}
        except (UnsealError, ValueError, AttributeError):  # other keys' (their tokens are refused anyway)
            log.warning("%s does not open with this node's keys: its sign-outs are not kept", path)
            return {}

    def _save_sign_outs(self, kept: dict[str, float]) -> None:
        path = self._sign_outs_path
        if path is None:
            return
        write_atomically(path, seal(self._sign_outs_key, json.dumps(kept).encode(), SIGN_OUTS_INFO))


def _canonical_signature(token: str) -> bool:
    """Whether the token's last segment is the one encoding of its bytes: base64url leaves
    spare bits in the last character, which must not let an altered token pass."""
    segment = token.rpartition(".")[2]
    try:
        return base64url_encode(base64url_decode(segment)).decode() == segment
    except (ValueError, TypeError):
        return False


def _recover(message: str, signature: bytes) -> str:
    """The checksummed address whose key made the EIP-191 `signature` over `message`."""
    if len(signature) != 65:
        raise Unauthenticated(
            f"a signature has 65 bytes (r, s, v), got {len(signature)}: sign with personal_sign"
        )
    try:
        return str(Account.recover_message(encode_defunct(text=message), signature=signature))
    except Exception as exc:  # eth_keys and eth_account raise several kinds for a bad signature
        raise Unauthenticated(
            f"the signature does not verify ({exc}): sign the message with personal_sign"
        ) from None
