"""The dev accounts: keys derived from a BIP-39 mnemonic, as Anvil and Hardhat do."""

from __future__ import annotations

from dataclasses import dataclass

from evm_runtime.types import Address

TEST_MNEMONIC = "test test test test test test test test test test test junk"
DERIVATION_PATH = "m/44'/60'/0'/0/{index}"
DEFAULT_COUNT = 10
DEFAULT_BALANCE_ETH = 10_000
WEI_PER_ETH = 10**18


@dataclass(frozen=True, slots=True)
class DevAccount:
    address: str
    private_key: str

    @property
    def address_bytes(self) -> Address:
        return Address(bytes.fromhex(self.address[2:]))


def derive_accounts(mnemonic: str = TEST_MNEMONIC, count: int = DEFAULT_COUNT) -> list[DevAccount]:
    """The first `count` accounts of `mnemonic` on path m/44'/60'/0'/0/i."""
    from eth_account import Account  # imported when needed: it is slow to import

    Account.enable_unaudited_hdwallet_features()
    accounts = []
    for index in range(count):
        account = Account.from_mnemonic(mnemonic, account_path=DERIVATION_PATH.format(index=index))
        accounts.append(DevAccount(address=account.address, private_key="0x" + account.key.hex()))
    return accounts
