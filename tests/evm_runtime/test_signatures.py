"""Sender recovery from the encoding, against py-evm's own recovery."""

import pytest
from eth._utils.transactions import extract_transaction_sender
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from evm_runtime.chain import VM
from evm_runtime.signatures import SECP256K1_N, InvalidSignature, recover_sender, recover_signer, signing_hash

CHAIN_ID = 1337
builder = VM.get_transaction_builder()
account = Account.from_key("0x" + "11" * 32)

fields = st.fixed_dictionaries(
    {
        "nonce": st.integers(0, 2**64 - 2),
        "gas": st.integers(21_000, 2**63),
        "value": st.integers(0, 2**255),
        "data": st.binary(max_size=200),
        "to": st.sampled_from(["0x" + "22" * 20, to_checksum_address("0x" + "ab" * 20)]),
    }
)
fees = st.one_of(
    st.builds(lambda p: {"gasPrice": p}, st.integers(0, 2**128)),
    st.builds(lambda p: {"type": 1, "gasPrice": p, "accessList": []}, st.integers(0, 2**128)),
    st.builds(
        lambda tip, extra: {"type": 2, "maxPriorityFeePerGas": tip, "maxFeePerGas": tip + extra},
        st.integers(0, 2**64),
        st.integers(0, 2**64),
    ),
)


@settings(max_examples=60, deadline=None)
@given(fields, fees)
def test_recovers_the_sender_py_evm_recovers(tx_fields: dict, fee_fields: dict) -> None:
    raw = bytes(account.sign_transaction({**tx_fields, **fee_fields, "chainId": CHAIN_ID}).raw_transaction)
    tx = builder.decode(raw)
    sender = recover_sender(signing_hash(raw, tx.chain_id), tx.y_parity, tx.r, tx.s)
    assert sender == extract_transaction_sender(tx) == bytes.fromhex(account.address[2:])


def test_signing_hash_matches_py_evm_for_long_transactions() -> None:
    # A list longer than 55 bytes needs a long-form RLP prefix; data makes it so.
    raw = bytes(
        account.sign_transaction(
            {
                "chainId": CHAIN_ID,
                "nonce": 1,
                "gas": 100_000,
                "gasPrice": 1,
                "to": "0x" + "22" * 20,
                "value": 0,
                "data": b"\x01" * 70_000,
            }
        ).raw_transaction
    )
    tx = builder.decode(raw)
    assert recover_sender(signing_hash(raw, tx.chain_id), tx.y_parity, tx.r, tx.s) == tx.sender


def test_high_s_is_refused() -> None:
    raw = bytes(
        account.sign_transaction(
            {
                "chainId": CHAIN_ID,
                "nonce": 0,
                "gas": 21_000,
                "gasPrice": 1,
                "to": "0x" + "22" * 20,
                "value": 0,
            }
        ).raw_transaction
    )
    tx = builder.decode(raw)
    message = signing_hash(raw, tx.chain_id)
    try:
        recover_sender(message, tx.y_parity ^ 1, tx.r, SECP256K1_N - tx.s)
    except InvalidSignature as exc:
        assert "s is out of range" in str(exc)
    else:
        raise AssertionError("a high-s signature was accepted")


@given(st.binary(min_size=32, max_size=32))
@settings(max_examples=25)
def test_the_signer_of_a_hash_is_recovered_with_either_way_of_writing_v(digest: bytes) -> None:
    signed = account.unsafe_sign_hash(digest)
    signature = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big")
    for v in (signed.v - 27, signed.v):  # y parity, or 27 + y parity
        assert recover_signer(digest, signature + bytes([v])) == bytes.fromhex(account.address[2:])


@pytest.mark.parametrize(
    "digest, signature, reason",
    [
        (b"\x01" * 31, b"\x01" * 65, "32 bytes"),
        (b"\x01" * 32, b"\x01" * 64, "65 bytes"),
        (b"\x01" * 32, b"\x01" * 64 + b"\x02", "y parity"),
        (b"\x01" * 32, bytes(65), "r is out of range"),
    ],
)
def test_what_is_not_a_signature_of_a_hash_is_refused(digest: bytes, signature: bytes, reason: str) -> None:
    with pytest.raises(InvalidSignature, match=reason):
        recover_signer(digest, signature)
