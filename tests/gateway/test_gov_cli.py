"""`conclave gov abi`: the governance contract's ABI and address, for wallets and libraries."""

from __future__ import annotations

import json

import pytest
from eth_utils import to_checksum_address
from web3 import Web3

from gateway.cli import main
from governance.system_contract import ABI, GOVERNANCE_ADDRESS, SELECTORS


def test_the_abi_is_printed_and_web3_takes_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gov", "abi"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == ABI
    contract = Web3().eth.contract(address=to_checksum_address(GOVERNANCE_ADDRESS), abi=printed)
    encoded = contract.encode_abi("vote", [1, True])
    assert SELECTORS[bytes.fromhex(encoded[2:10])] == "vote"
    propose = contract.encode_abi("propose", [[("add_user", b"\x00" * 64)]])
    assert SELECTORS[bytes.fromhex(propose[2:10])] == "propose"


def test_the_address_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gov", "abi", "--address"]) == 0
    assert capsys.readouterr().out.strip() == to_checksum_address(GOVERNANCE_ADDRESS)
