"""Helpers for the end-to-end tests: web3.py clients, local signing, deploying, waiting.

Transactions are always signed locally with eth_account and sent with
eth_sendRawTransaction, as a wallet would. Nothing here asks the node to sign.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from tests.support.artifacts import load_artifact
from tests.support.devnode import DevAccount, DevNode

REPO_ROOT = Path(__file__).resolve().parents[2]
GWEI = 10**9
ETHER = 10**18
TIP = GWEI
RECEIPT_TIMEOUT = 30.0

# The ten accounts of `test test ... junk` (m/44'/60'/0'/0/i), as Anvil and Hardhat have them.
STANDARD_DEV_ADDRESSES = (
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
)


def connect(node: DevNode) -> Web3:
    return Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 30}))


def next_base_fee(w3: Web3) -> int:
    """The base fee the next block will have (the last entry of eth_feeHistory)."""
    return int(w3.eth.fee_history(1, "latest")["baseFeePerGas"][-1])


class Signer:
    """A local key that signs transactions for one chain and sends them raw."""

    def __init__(self, w3: Web3, key: str | bytes | LocalAccount) -> None:
        self.w3 = w3
        self.account: LocalAccount = key if isinstance(key, LocalAccount) else Account.from_key(key)
        self.chain_id = w3.eth.chain_id

    @property
    def address(self) -> str:
        return self.account.address

    def nonce(self, block: str = "pending") -> int:
        return self.w3.eth.get_transaction_count(self.address, block)

    def fill(self, **fields: Any) -> dict[str, Any]:
        """A complete transaction dict: defaults for every field not given."""
        tx: dict[str, Any] = {"chainId": self.chain_id, "value": 0, "data": b"", **fields}
        if tx.get("chainId") is None:
            del tx["chainId"]
        if "nonce" not in tx:
            tx["nonce"] = self.nonce()
        kind = tx.get("type")
        if kind == 0:
            del tx["type"]  # eth_account signs a legacy transaction when no type is given
        if "gasPrice" in tx or kind in (0, 1):
            tx.setdefault("gasPrice", next_base_fee(self.w3) + TIP)
        else:
            tx.setdefault("maxPriorityFeePerGas", TIP)
            tx.setdefault("maxFeePerGas", 2 * next_base_fee(self.w3) + tx["maxPriorityFeePerGas"])
        if "gas" not in tx:
            estimate = {k: v for k, v in tx.items() if k in ("to", "value", "data", "accessList")}
            estimate["from"] = self.address
            tx["gas"] = self.w3.eth.estimate_gas(estimate) * 12 // 10
        return tx

    def sign(self, **fields: Any) -> SignedTransaction:
        return self.account.sign_transaction(self.fill(**fields))

    def send(self, **fields: Any) -> HexBytes:
        return self.w3.eth.send_raw_transaction(self.sign(**fields).raw_transaction)

    def transact(self, **fields: Any) -> Any:
        """Send and wait for the receipt."""
        return wait_receipt(self.w3, self.send(**fields))

    def call_fn(self, fn: Any, **fields: Any) -> Any:
        """Send a contract function call (`contract.functions.f(args)`) and wait for the receipt."""
        return self.transact(to=fn.address, data=fn._encode_transaction_data(), **fields)

    def deploy(self, name: str, *args: Any, **fields: Any) -> tuple[Contract, Any]:
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        data = factory.constructor(*args).data_in_transaction
        receipt = self.transact(data=data, **fields)
        assert receipt["status"] == 1, receipt
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"]), receipt


def wait_receipt(w3: Web3, tx_hash: Any, timeout: float = RECEIPT_TIMEOUT) -> Any:
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05)


def fresh_account() -> LocalAccount:
    return Account.create()


def funded_signer(funder: Signer, ether: int = 10) -> Signer:
    """A new random account holding `ether` ETH, sent from `funder`."""
    account = fresh_account()
    receipt = funder.transact(to=account.address, value=ether * ETHER, gas=21_000)
    assert receipt["status"] == 1
    return Signer(funder.w3, account)


def dev_signer(w3: Web3, account: DevAccount) -> Signer:
    return Signer(w3, account.key)


def same_block(signer: Signer, txs: list[dict[str, Any]]) -> list[Any]:
    """Mine `txs` (from one signer, consecutive nonces) in one block; return their receipts.

    The later nonces are sent first and wait in the pool for the gap; the first one
    makes all of them ready at once, and the node seals all ready transactions in one block.
    """
    start = signer.nonce()
    signed = [signer.sign(nonce=start + i, **fields) for i, fields in enumerate(txs)]
    for tx in reversed(signed):
        signer.w3.eth.send_raw_transaction(tx.raw_transaction)
    receipts = [wait_receipt(signer.w3, tx.hash) for tx in signed]
    assert len({r["blockNumber"] for r in receipts}) == 1, [r["blockNumber"] for r in receipts]
    return receipts


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str


def conclave_command(*args: str) -> list[str]:
    """The `conclave` command: the installed script beside this Python, else the module."""
    script = Path(sys.executable).with_name("conclave")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "gateway.cli", *args]


def run_conclave(*args: str, timeout: float = 30) -> CliRun:
    """Run `conclave ARGS` to completion (it must exit by itself within `timeout`)."""
    process = subprocess.Popen(
        conclave_command(*args),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(
            f"conclave {' '.join(args)} did not exit within {timeout} s\nstdout: {stdout}\nstderr: {stderr}"
        ) from None
    return CliRun(process.returncode, stdout, stderr)
