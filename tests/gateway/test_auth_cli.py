"""`conclave auth login`: its arguments, and the domain its sign-in message names."""

from __future__ import annotations

import pytest

from gateway.auth_cli import CommandError, domain_of, run_login
from gateway.cli import build_parser


def test_the_arguments_parse() -> None:
    args = build_parser().parse_args(
        ["auth", "login", "--key", "0x01", "--rpc", "http://node:8545", "--expires-in", "60", "--json"]
    )
    assert (args.run, args.key, args.rpc, args.expires_in, args.json) == (
        run_login,
        "0x01",
        "http://node:8545",
        60,
        True,
    )
    assert build_parser().parse_args(["auth", "login"]).rpc == "http://127.0.0.1:8545"


@pytest.mark.parametrize(
    "argv",
    [["auth"], ["auth", "login", "--expires-in", "0"], ["auth", "login", "--key", "a", "--key-file", "b"]],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("http://127.0.0.1:8545", "127.0.0.1:8545"),
        ("http://127.0.0.1:8545/", "127.0.0.1:8545"),
        ("https://Node.Example.com/conclave", "node.example.com"),
        ("https://node.example.com:443", "node.example.com"),
        ("http://node.example.com:443", "node.example.com:443"),
        ("http://[::1]:8545", "[::1]:8545"),
        ("http://user:pw@host:1", "host:1"),
    ],
)
def test_the_domain_is_what_the_host_header_says(url: str, domain: str) -> None:
    assert domain_of(url) == domain


def test_a_url_that_is_not_http_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CommandError):
        domain_of("ws://127.0.0.1:8545")
    args = build_parser().parse_args(["auth", "login", "--rpc", "node:8545", "--key", "0x01"])
    assert args.run(args) == 1
    assert "http:// or https://" in capsys.readouterr().err
