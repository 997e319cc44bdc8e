"""Sign-In with Ethereum in the enclave: nonces, EIP-4361 logins and login tokens."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from enclave.auth import (
    MAX_CLOCK_SKEW,
    NONCE_LIFETIME,
    SIGN_OUTS_FILE,
    TOKEN_LIFETIME,
    Authenticator,
    MalformedMessage,
    SiweMessage,
    parse_message,
    parse_time,
    rfc3339,
)
from enclave.identity import NodeIdentity
from enclave.interface import AuthSession
from enclave.keystore import open_keystore
from evm_runtime.exceptions import Unauthenticated

CHAIN_ID = 1337
DOMAIN = "127.0.0.1:8545"
START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(clock: Clock) -> Authenticator:
    return Authenticator.for_identity(NodeIdentity.create(), CHAIN_ID, clock=clock)


@pytest.fixture
def reader() -> LocalAccount:
    return Account.create()


def message(auth: Authenticator, account: LocalAccount, clock: Clock, **changes: object) -> SiweMessage:
    fields: dict[str, object] = {
        "domain": DOMAIN,
        "address": account.address,
        "uri": f"http://{DOMAIN}",
        "chain_id": CHAIN_ID,
        "nonce": auth.challenge(),
        "issued_at": rfc3339(clock.now),
        "statement": "Sign in to read confidential data.",
    }
    fields.update(changes)
    return SiweMessage(**fields)  # type: ignore[arg-type]


def sign(account: LocalAccount, text: str) -> bytes:
    return bytes(account.sign_message(encode_defunct(text=text)).signature)


def login(
    auth: Authenticator, account: LocalAccount, clock: Clock, sent_to: str = DOMAIN, **changes: object
) -> AuthSession:
    text = message(auth, account, clock, **changes).text()
    return auth.login(text, sign(account, text), sent_to)


# -- good logins ----------------------------------------------------------------------------


def test_a_signed_message_earns_a_token_naming_its_signer(
    auth: Authenticator, reader: LocalAccount, clock: Clock
) -> None:
    session = login(auth, reader, clock)
    assert session.address == bytes.fromhex(reader.address[2:])
    assert session.expires_at == START + TOKEN_LIFETIME
    assert auth.viewer(session.token) == session.address
    assert auth.viewer(None) is None
    assert session.token.count(".") == 2  # a JWT


def test_a_token_lasts_no_longer_than_the_message_says(
    auth: Authenticator, reader: LocalAccount, clock: Clock
) -> None:
    session = login(auth, reader, clock, expiration_time=rfc3339(START + 600))
    assert session.expires_at == START + 600


def test_the_token_key_survives_a_restart(tmp_path: Path, reader: LocalAccount, clock: Clock) -> None:
    before = Authenticator.for_identity(open_keystore(tmp_path, b"\x01" * 32).identity, CHAIN_ID, clock=clock)
    session = login(before, reader, clock)
    after = Authenticator.for_identity(open_keystore(tmp_path, b"\x01" * 32).identity, CHAIN_ID, clock=clock)
    assert after.viewer(session.token) == session.address


def test_domains_compare_without_case(auth: Authenticator, reader: LocalAccount, clock: Clock) -> None:
    session = login(auth, reader, clock, sent_to="LocalHost:8545", domain="localhost:8545")
    assert auth.viewer(session.token) == session.address


def test_signatures_with_v_0_or_1_are_taken(auth: Authenticator, reader: LocalAccount, clock: Clock) -> None:
    text = message(auth, reader, clock).text()
    signature = sign(reader, text)
    session = auth.login(text, signature[:64] + bytes([signature[64] - 27]), DOMAIN)
    assert auth.viewer(session.token) == session.address


# -- tokens refused ---------------------------------------------------------------------------


def test_an_expired_token_is_refused_with_what_to_do(
    auth: Authenticator, reader: LocalAccount, clock: Clock
) -> None:
    session = login(auth, reader, clock)
    clock.now = START + TOKEN_LIFETIME - 1
    assert auth.viewer(session.token) == session.address
    clock.now = START + TOKEN_LIFETIME
    with pytest.raises(
        Unauthenticated, match=r"token expired at 2023-11-15 22:13:20 UTC: sign in again via /auth/nonce"
    ):
        auth.viewer(session.token)


def test_a_token_with_any_byte_changed_is_refused(
    auth: Authenticator, reader: LocalAccount, clock: Clock
) -> None:
    token = login(auth, reader, clock).token
    for position, character in enumerate(token):
        for replacement in {chr(ord(character) ^ 1), "A", "B", "."} - {character}:
            tampered = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(Unauthenticated):
                auth.viewer(tampered)
    for broken in ("", "x", token + "A", token[:-1], "a.b.c", "Bearer " + token, token.replace(".", "")):
        with pytest.raises(Unauthenticated):
            auth.viewer(broken)


def test_a_token_from_another_node_is_refused(reader: LocalAccount, clock: Clock) -> None:
    ours = Authenticator.for_identity(NodeIdentity.create(), CHAIN_ID, clock=clock)
    theirs = Authenticator.for_identity(NodeIdentity.create(), CHAIN_ID, clock=clock)
    with pytest.raises(Unauthenticated, match="token not issued by this node"):
        ours.viewer(login(theirs, reader, clock).token)


def test_a_token_forged_without_the_key_is_refused(
    auth: Authenticator, reader: LocalAccount, clock: Clock
) -> None:
    """Same claims and issuer, another key (or none): the MAC gives it away."""
    import jwt

    claims = jwt.decode(login(auth, reader, clock).token, options={"verify_signature": False})
    claims["sub"] = Account.create().address
    for forged in (
        jwt.encode(claims, b"k" * 32, algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
    ):
        with pytest.raises(Unauthenticated, match="token not issued by this node|malformed"):
            auth.viewer(forged)


# -- logins refused -----------------------------------------------------------------------------


def test_a_challenge_signs_in_once(auth: Authenticator, reader: LocalAccount, clock: Clock) -> None:
    text = message(auth, reader, clock).text()
    signature = sign(reader, text)
    auth.login(text, signature, DOMAIN)
    with pytest.raises(Unauthenticated, match="used already"):
        auth.login(text, signature, DOMAIN)


def test_a_nonce_this_node_did_not_issue_is_refused(
    auth: Authenticator, reader: LocalAccount, clock: Clock
) -> None:
    with pytest.raises(Unauthenticated, match=r"not issued by this node.*/auth/nonce"):
        login(auth, reader, clock, nonce="abcdef0123456789")


def test_an_expired_nonce_is_refused(auth: Authenticator, reader: LocalAccount, clock: Clock) -> None:
    text = message(auth, reader, clock).text()
    clock.now = START + NONCE_LIFETIME
    with pytest.raises(Unauthenticated, match="nonce .* expired at"):
        auth.login(text, sign(reader, text), DOMAIN)


def test_nonces_are_bounded(reader: LocalAccount, clock: Clock) -> None:
    auth = Authenticator.for_identity(NodeIdentity.create(), CHAIN_ID, clock=clock)
    auth._max_nonces = 3
    oldest = message(auth, reader, clock).text()
    for _ in range(3):
        auth.challenge()
    assert len(auth._nonces) == 3
    with pytest.raises(Unauthenticated, match="not issued by this node"):
        auth.login(oldest, sign(reader, oldest), DOMAIN)


def test_expired_nonces_are_forgotten(auth: Authenticator, clock: Clock) -> None:
    for _ in range(5):
        auth.challenge()
    clock.now += NONCE_LIFETIME
    auth.challenge()
    assert len(auth._nonces) == 1


def test_another_domain_is_refused(auth: Authenticator, reader: LocalAccount, clock: Clock) -> None:
    with pytest.raises(Unauthenticated, match="signs in to 'evil.example' but was sent to '127.0.0.1:8545'"):
        login(auth, reader, clock, domain="evil.example")


def test_another_chain_is_refused(auth: Authenticator, reader: LocalAccount, clock: Clock) -> None:
    with pytest.raises(Unauthenticated, match="chain id 1, this chain's is 1337"):
        login(auth, reader, clock, chain_id=1)


def test_a_signature_by_another_key_is_refused(
    auth: Authenticator, reader: LocalAccount, clock: Clock
) -> None:
    text = message(auth, reader, clock).text()
    with pytest.raises(Unauthenticated, match="the signature is by"):
        auth.login(text, sign(Account.create(), text), DOMAIN)
    for garbage in (b"", b"\x00" * 65, b"\x01" * 64 + b"\x1b", sign(reader, text)[:64]):
        with pytest.raises(Unauthenticated):
            auth.login(text, garbage, DOMAIN)
    assert auth.viewer(auth.login(text, sign(reader, text), DOMAIN).token)  # refusals did not burn the nonce


def test_an_expired_message_is_refused(auth: Authenticator, reader: LocalAccount, clock: Clock) -> None:
    with pytest.raises(Unauthenticated, match="the message expired at"):
        login(auth, reader, clock, expiration_time=rfc3339(START))


def test_a_message_not_yet_valid_is_refused(auth: Authenticator, reader: LocalAccount, clock: Clock) -> None:
    with pytest.raises(Unauthenticated, match="not valid before"):
        login(auth, reader, clock, not_before=rfc3339(START + 60))


def test_a_message_from_the_future_is_refused(
    auth: Authenticator, reader: LocalAccount, clock: Clock
) -> None:
    login(auth, reader, clock, issued_at=rfc3339(START + MAX_CLOCK_SKEW))  # a wallet's clock a bit ahead
    with pytest.raises(Unauthenticated, match="issued in the future"):
        login(auth, reader, clock, issued_at=rfc3339(START + MAX_CLOCK_SKEW + 1))


def test_a_malformed_message_is_refused(auth: Authenticator, reader: LocalAccount, clock: Clock) -> None:
    good = message(auth, reader, clock).text()
    broken = [
        "",
        "hello",
        good.replace("\n", "\r\n"),
        good.replace(reader.address, reader.address.lower()),  # not checksummed
        good.replace("Version: 1", "Version: 2"),
        good.replace("Chain ID: 1337", "Chain ID: x"),
        good.replace("URI: ", "URL: "),
        good + "\nSurprise: yes",
        good.replace("Issued At: ", "Issued At: yesterday "),
    ]
    for text in broken:
        with pytest.raises(Unauthenticated, match="not an EIP-4361 message"):
            auth.login(text, sign(reader, text), DOMAIN)


# -- the message format ---------------------------------------------------------------------------


def test_every_field_round_trips(reader: LocalAccount) -> None:
    full = SiweMessage(
        domain="node.example.com",
        address=reader.address,
        uri="https://node.example.com/login",
        chain_id=1,
        nonce="32891756",
        issued_at="2021-09-30T16:25:24.000Z",
        scheme="https",
        statement="I accept the ServiceOrg Terms of Service: https://service.org/tos",
        expiration_time="2021-10-30T16:25:24+02:00",
        not_before="2021-09-30T16:25:24Z",
        request_id="abc-123",
        resources=(
            "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
            "https://example.com/x",
        ),
    )
    assert parse_message(full.text()) == full
    bare = dataclasses.replace(
        full,
        scheme=None,
        statement=None,
        expiration_time=None,
        not_before=None,
        request_id=None,
        resources=(),
    )
    assert parse_message(bare.text()) == bare
    assert "\n\n\nURI: " in bare.text()  # no statement: two empty lines, as EIP-4361's ABNF has them


def test_the_eip_example_parses() -> None:
    text = (
        "service.org wants you to sign in with your Ethereum account:\n"
        "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\n"
        "I accept the ServiceOrg Terms of Service: https://service.org/tos\n\n"
        "URI: https://service.org/login\n"
        "Version: 1\n"
        "Chain ID: 1\n"
        "Nonce: 32891756\n"
        "Issued At: 2021-09-30T16:25:24Z\n"
        "Resources:\n"
        "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"
        "- https://example.com/my-web2-claim.json"
    )
    parsed = parse_message(text)
    assert (parsed.domain, parsed.chain_id, parsed.nonce) == ("service.org", 1, "32891756")
    assert len(parsed.resources) == 2 and parsed.text() == text


@pytest.mark.parametrize(
    "text",
    [
        "2021-09-30T16:25:24",  # no offset
        "2021-09-30 16:25:24Z",
        "2021-13-30T16:25:24Z",
        "2021-09-30T16:25:24.Z",
    ],
)
def test_times_are_rfc_3339(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_times_read_as_unix_time() -> None:
    assert parse_time("2023-11-14T22:13:20Z") == START
    assert parse_time("2023-11-14t23:13:20.123456789+01:00") == START + 0.123456
    assert rfc3339(START) == "2023-11-14T22:13:20Z"


def test_parse_errors_name_the_line(reader: LocalAccount) -> None:
    text = SiweMessage(
        DOMAIN, reader.address, "http://x", CHAIN_ID, "12345678", "2021-09-30T16:25:24Z"
    ).text()
    with pytest.raises(MalformedMessage, match="line 8"):
        parse_message(text.replace("Nonce: 12345678", "Nonce: short"))


# -- through the enclave ------------------------------------------------------------------------


def test_the_enclave_signs_in_and_its_tokens_outlive_a_restart(tmp_path: Path, reader: LocalAccount) -> None:
    from enclave.messages import decode, encode, failure, raise_failure
    from gateway.node import Node, NodeConfig

    config = NodeConfig(
        database_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}", enclave_dir=tmp_path / "enclave"
    )
    node = Node(config)
    enclave = node.enclave
    now = rfc3339(time.time())
    text = SiweMessage(
        DOMAIN, reader.address, f"http://{DOMAIN}", node.params.chain_id, enclave.auth_challenge(), now
    ).text()
    session = enclave.auth_login(text, sign(reader, text), DOMAIN)
    assert decode(encode(session)) == session  # as it crosses from an enclave process
    assert enclave.viewer(session.token) == session.address
    with pytest.raises(Unauthenticated) as refused:
        enclave.auth_login(text, sign(reader, text), DOMAIN)
    with pytest.raises(Unauthenticated, match="used already"):
        raise_failure(*failure(refused.value)[1:])
    node.store.close()
    node.engine.dispose()

    restarted = Node(config)
    assert restarted.enclave.viewer(session.token) == session.address
    restarted.store.close()
    restarted.engine.dispose()


# -- signing out ----------------------------------------------------------------------------


def test_signing_out_refuses_every_earlier_token_of_the_address_only(
    auth: Authenticator, reader: LocalAccount, clock: Clock
) -> None:
    phone, laptop = login(auth, reader, clock), login(auth, reader, clock)
    other = login(auth, Account.create(), clock)
    clock.now += 0.25
    assert auth.sign_out(phone.token) == (phone.address, clock.now)
    for token in (phone.token, laptop.token):
        with pytest.raises(Unauthenticated, match="signed out at .*sign in again"):
            auth.viewer(token)
    assert auth.viewer(other.token) == other.address
    clock.now += 0.25  # the same second: a new login is later than the sign-out all the same
    assert auth.viewer(login(auth, reader, clock).token) == phone.address
    with pytest.raises(Unauthenticated):
        auth.sign_out(phone.token)  # a refused token signs no one out


def test_sign_outs_hold_across_restarts_in_a_sealed_file(
    tmp_path: Path, reader: LocalAccount, clock: Clock
) -> None:
    def restarted() -> Authenticator:
        keys = open_keystore(tmp_path, b"\x01" * 32)
        return Authenticator.for_identity(keys.identity, CHAIN_ID, clock=clock, directory=tmp_path)

    before = restarted()
    session = login(before, reader, clock)
    clock.now += 1
    before.sign_out(session.token)
    assert SIGN_OUTS_FILE in {path.name for path in tmp_path.iterdir()}
    assert reader.address.lower()[2:].encode() not in (tmp_path / SIGN_OUTS_FILE).read_bytes().lower()
    with pytest.raises(Unauthenticated, match="signed out"):
        restarted().viewer(session.token)
    other_keys = Authenticator.for_identity(NodeIdentity.create(), CHAIN_ID, clock=clock, directory=tmp_path)
    assert other_keys.viewer(login(other_keys, reader, clock).token) is not None  # the file is not theirs
