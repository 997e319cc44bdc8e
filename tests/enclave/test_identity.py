"""A node identity signs as an Ethereum account and unseals only where it was sealed."""

from __future__ import annotations

import pytest
from eth_account import Account

from enclave.identity import NodeIdentity
from enclave.sealing import UnsealError, derive_sealing_key
from evm_runtime.signatures import recover_signer


def test_address_is_the_ethereum_address_of_the_key() -> None:
    identity = NodeIdentity.create()
    assert identity.address == bytes.fromhex(Account.from_key(identity.key.secret).address[2:])


def test_signatures_recover_to_the_address() -> None:
    identity = NodeIdentity.create()
    digest = bytes(range(32))
    assert recover_signer(digest, identity.sign_hash(digest)) == identity.address


def test_only_hashes_are_signed() -> None:
    with pytest.raises(ValueError, match="32-byte hash"):
        NodeIdentity.create().sign_hash(b"message")


def test_sealed_identity_unseals_under_the_same_key_only() -> None:
    identity = NodeIdentity.create()
    key = derive_sealing_key(b"\x01" * 32, b"\x02" * 32)
    blob = identity.sealed(key)
    assert identity.key.secret not in blob
    assert NodeIdentity.unsealed(key, blob).address == identity.address
    with pytest.raises(UnsealError):
        NodeIdentity.unsealed(derive_sealing_key(b"\x01" * 32, b"\x03" * 32), blob)
