"""Decoding signed transactions and checking them against the state (`evm_runtime.transactions`)."""

from __future__ import annotations

import pytest
import rlp
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from evm_runtime import exceptions as ex
from evm_runtime.transactions import (
    ACCESS_LIST_TYPE,
    DYNAMIC_FEE_TYPE,
    LEGACY_TYPE,
    MAX_TRANSACTION_BYTES,
    SET_CODE_TYPE,
    check_admissible,
    decode_signed_transaction,
    effective_gas_price,
    max_cost,
    transaction_type,
)

from .chainkit import ACCOUNTS, CHAIN_ID, GWEI, address_of, decoded, recipient, sign

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

ALICE = ACCOUNTS[0]
TO = recipient(1)


def _authorization(nonce: int = 0, chain_id: int = CHAIN_ID):
    return ACCOUNTS[1].sign_authorization({"chainId": chain_id, "address": recipient(7), "nonce": nonce})


SIGNED_KINDS = {
    "legacy-eip155": dict(type=0, gasPrice=3 * GWEI, to=TO, value=5),
    "eip2930": dict(
        type=1,
        gasPrice=3 * GWEI,
        gas=30_000,
        to=TO,
        value=5,
        accessList=[{"address": recipient(2), "storageKeys": ["0x" + "00" * 31 + "07"]}],
    ),
    "eip1559": dict(type=2, maxFeePerGas=3 * GWEI, maxPriorityFeePerGas=GWEI, to=TO, value=5),
    "eip7702": dict(
        type=4,
        maxFeePerGas=3 * GWEI,
        maxPriorityFeePerGas=GWEI,
        gas=100_000,
        to=TO,
        value=5,
    ),
}
EXPECTED_TYPE = {"legacy-eip155": 0, "eip2930": 1, "eip1559": 2, "eip7702": 4}


def _signed(kind: str, account=ALICE, **overrides) -> bytes:
    fields = dict(SIGNED_KINDS[kind], nonce=3)
    if kind == "eip7702":
        fields["authorizationList"] = [_authorization()]
    fields.update(overrides)
    return sign(account, **fields)


# -- accepted transactions ----------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SIGNED_KINDS))
def test_each_supported_type_decodes_and_recovers_its_sender(kind: str) -> None:
    raw = _signed(kind)
    result = decode_signed_transaction(raw, CHAIN_ID)
    assert result.sender == address_of(ALICE)
    assert result.raw == raw
    assert transaction_type(result.tx) == EXPECTED_TYPE[kind]
    assert result.nonce == 3
    assert result.tx.value == 5
    assert result.tx.to == bytes.fromhex(TO[2:])
    assert result.tx.chain_id == CHAIN_ID


def test_set_code_transaction_keeps_its_authorizations() -> None:
    auth = _authorization(nonce=9)
    result = decode_signed_transaction(_signed("eip7702", authorizationList=[auth]), CHAIN_ID)
    (decoded_auth,) = result.tx.authorization_list
    assert decoded_auth.chain_id == CHAIN_ID
    assert decoded_auth.nonce == 9
    assert decoded_auth.address == bytes.fromhex(recipient(7)[2:])
    assert (decoded_auth.r, decoded_auth.s, decoded_auth.y_parity) == (auth.r, auth.s, auth.y_parity)


def test_each_account_is_recovered_as_the_sender() -> None:
    senders = {decode_signed_transaction(_signed("eip1559", account=a), CHAIN_ID).sender for a in ACCOUNTS}
    assert senders == {address_of(a) for a in ACCOUNTS}


def test_contract_creation_decodes_with_an_empty_recipient() -> None:
    raw = sign(ALICE, gas=100_000, data=b"\x60\x00", to=None)
    result = decode_signed_transaction(raw, CHAIN_ID)
    assert result.tx.to == b""
    assert result.tx.data == b"\x60\x00"


# -- refused transactions -----------------------------------------------------------------


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(ex.InvalidRequest, match="empty transaction"):
        decode_signed_transaction(b"", CHAIN_ID)


def test_oversized_transaction_is_refused_before_decoding() -> None:
    raw = b"\x02" + b"\x00" * MAX_TRANSACTION_BYTES
    with pytest.raises(
        ex.InvalidRequest, match=rf"oversized transaction: {len(raw)} bytes.*{MAX_TRANSACTION_BYTES}"
    ):
        decode_signed_transaction(raw, CHAIN_ID)


def test_a_transaction_of_exactly_the_size_limit_is_not_refused_for_its_size() -> None:
    size = MAX_TRANSACTION_BYTES - 200
    raw = sign(ALICE, data=b"\x01" * size, gas=10_000_000)
    while len(raw) != MAX_TRANSACTION_BYTES:  # the length prefixes grow with the payload
        size += MAX_TRANSACTION_BYTES - len(raw)
        raw = sign(ALICE, data=b"\x01" * size, gas=10_000_000)
    payload = b"\x01" * size
    assert decode_signed_transaction(raw, CHAIN_ID).tx.data == payload


@pytest.mark.parametrize(
    "raw",
    [b"\xc0", b"\xff", b"\x80", b"\xf8", b"\x01", b"\x02\xc0", b"\x04", b"\xc1\xc0", b"\x02garbage"],
    ids=repr,
)
def test_garbage_rlp_is_refused_as_undecodable(raw: bytes) -> None:
    with pytest.raises(ex.InvalidRequest, match="undecodable transaction"):
        decode_signed_transaction(raw, CHAIN_ID)


def test_trailing_bytes_after_a_valid_transaction_are_refused() -> None:
    with pytest.raises(ex.InvalidRequest):
        decode_signed_transaction(_signed("eip1559") + b"\x00", CHAIN_ID)


def test_blob_transactions_are_refused_with_an_explanation() -> None:
    with pytest.raises(
        ex.UnsupportedTransactionType, match="blob transactions \\(type 3\\) are not supported"
    ):
        decode_signed_transaction(b"\x03" + rlp.encode([CHAIN_ID, 0]), CHAIN_ID)


@pytest.mark.parametrize("type_byte", [5, 0x10, 0x7F])
def test_unknown_type_bytes_are_refused(type_byte: int) -> None:
    with pytest.raises(ex.UnsupportedTransactionType, match=f"unknown transaction type {type_byte}"):
        decode_signed_transaction(bytes([type_byte]) + rlp.encode([]), CHAIN_ID)


@pytest.mark.parametrize("raw", [b"\x00", b"\x00\xc0", bytes(32)], ids=repr)
def test_type_byte_zero_is_refused_as_an_unknown_type(raw: bytes) -> None:
    with pytest.raises(ex.ConclaveError):
        decode_signed_transaction(raw, CHAIN_ID)


@pytest.mark.parametrize("kind", sorted(SIGNED_KINDS))
def test_wrong_chain_id_is_refused_naming_both_ids(kind: str) -> None:
    overrides = {"chainId": 1}
    if kind == "eip7702":
        overrides["authorizationList"] = [_authorization(chain_id=1)]
    raw = _signed(kind, **overrides)
    with pytest.raises(ex.InvalidRequest, match=f"invalid chain id 1: this chain's id is {CHAIN_ID}"):
        decode_signed_transaction(raw, CHAIN_ID)


def test_unprotected_legacy_transaction_is_refused() -> None:
    signed = ALICE.sign_transaction({"nonce": 0, "gasPrice": GWEI, "gas": 21_000, "to": TO, "value": 1})
    assert signed.v in (27, 28)
    with pytest.raises(ex.InvalidRequest, match=f"not replay-protected.*EIP-155.*{CHAIN_ID}"):
        decode_signed_transaction(bytes(signed.raw_transaction), CHAIN_ID)


def _field_position_of_r(kind: str) -> int:
    return {"legacy-eip155": 7, "eip2930": 9, "eip1559": 10, "eip7702": 11}[kind]


def _fields(raw: bytes) -> tuple[bytes, list]:
    if raw[0] >= 0xC0:
        return b"", list(rlp.decode(raw))
    return raw[:1], list(rlp.decode(raw[1:]))


@pytest.mark.parametrize("kind", sorted(SIGNED_KINDS))
@pytest.mark.parametrize("which", ["r", "s"])
@pytest.mark.parametrize("byte_index", [0, 13, 31])
def test_tampered_signature_is_refused_or_recovers_another_sender(
    kind: str, which: str, byte_index: int
) -> None:
    raw = _signed(kind)
    prefix, fields = _fields(raw)
    position = _field_position_of_r(kind) + (which == "s")
    value = bytearray(fields[position].rjust(32, b"\x00"))
    value[byte_index] ^= 0x5A
    fields[position] = bytes(value).lstrip(b"\x00")
    tampered = prefix + rlp.encode(fields)
    try:
        result = decode_signed_transaction(tampered, CHAIN_ID)
    except ex.InvalidRequest as error:
        assert "signature" in str(error) or "Transaction.s" in str(error)
    else:
        assert result.sender != address_of(ALICE)


@pytest.mark.parametrize("field,value", [("r", 0), ("s", 0), ("r", SECP256K1_N), ("s", SECP256K1_N + 1)])
def test_out_of_range_signature_values_are_refused(field: str, value: int) -> None:
    prefix, fields = _fields(_signed("eip1559"))
    fields[10 + (field == "s")] = value.to_bytes(33, "big").lstrip(b"\x00")
    with pytest.raises(ex.InvalidRequest, match="invalid signature"):
        decode_signed_transaction(prefix + rlp.encode(fields), CHAIN_ID)


def test_y_parity_above_one_is_refused() -> None:
    prefix, fields = _fields(_signed("eip1559"))
    fields[9] = b"\x02"
    with pytest.raises(ex.InvalidRequest, match="invalid signature"):
        decode_signed_transaction(prefix + rlp.encode(fields), CHAIN_ID)


def _high_s_twin(raw: bytes, kind: str) -> bytes:
    """The same signature with s' = n - s and the other parity: it recovers the same key."""
    prefix, fields = _fields(raw)
    r_position = _field_position_of_r(kind)
    s = int.from_bytes(fields[r_position + 1], "big")
    fields[r_position + 1] = (SECP256K1_N - s).to_bytes(32, "big").lstrip(b"\x00")
    if kind == "legacy-eip155":
        v = int.from_bytes(fields[6], "big")
        parity = v - 35 - 2 * CHAIN_ID
        fields[6] = (35 + 2 * CHAIN_ID + (1 - parity)).to_bytes(2, "big")
    else:
        parity = int.from_bytes(fields[r_position - 1], "big")
        fields[r_position - 1] = (1 - parity).to_bytes(1, "big").lstrip(b"\x00")
    return prefix + rlp.encode(fields)


@pytest.mark.parametrize("kind", sorted(SIGNED_KINDS))
def test_high_s_signature_is_refused(kind: str) -> None:
    """EIP-2: s <= n/2, else the same signed transaction would have a second hash."""
    twin = _high_s_twin(_signed(kind), kind)
    with pytest.raises(ex.InvalidRequest, match=r"(?i)signature|Transaction\.s"):
        decode_signed_transaction(twin, CHAIN_ID)


def test_intrinsic_gas_too_low_is_refused_naming_gas_and_minimum() -> None:
    with pytest.raises(ex.IntrinsicGasTooLow, match="gas 20999, minimum needed 21000"):
        decode_signed_transaction(sign(ALICE, gas=20_999, to=TO), CHAIN_ID)
    with pytest.raises(ex.IntrinsicGasTooLow, match="gas 21000, minimum needed 21032"):
        decode_signed_transaction(sign(ALICE, gas=21_000, to=TO, data=b"\x01\x02"), CHAIN_ID)


def test_exactly_the_intrinsic_gas_is_accepted() -> None:
    assert decode_signed_transaction(sign(ALICE, gas=21_000 + 4 + 16, to=TO, data=b"\x00\x01"), CHAIN_ID)


def test_intrinsic_gas_of_set_code_transactions_counts_authorizations() -> None:
    raw = _signed("eip7702", gas=21_000 + 25_000 - 1)
    with pytest.raises(ex.IntrinsicGasTooLow):
        decode_signed_transaction(raw, CHAIN_ID)
    assert decode_signed_transaction(_signed("eip7702", gas=21_000 + 25_000), CHAIN_ID)


@pytest.mark.parametrize("kind", ["eip1559", "eip7702"])
def test_priority_fee_above_max_fee_is_refused(kind: str) -> None:
    raw = _signed(kind, maxFeePerGas=GWEI, maxPriorityFeePerGas=GWEI + 1)
    with pytest.raises(
        ex.PriorityFeeAboveMaxFee, match=rf"\({GWEI + 1}\) is higher than max fee per gas \({GWEI}\)"
    ):
        decode_signed_transaction(raw, CHAIN_ID)


def test_priority_fee_equal_to_max_fee_is_accepted() -> None:
    assert decode_signed_transaction(
        _signed("eip1559", maxFeePerGas=GWEI, maxPriorityFeePerGas=GWEI), CHAIN_ID
    )


def test_set_code_transaction_without_authorizations_is_refused() -> None:
    prefix, fields = _fields(_signed("eip7702"))
    fields[9] = []
    with pytest.raises(ex.ConclaveError):
        decode_signed_transaction(prefix + rlp.encode(fields), CHAIN_ID)


def test_a_list_in_an_integer_field_is_refused() -> None:
    prefix, fields = _fields(_signed("eip1559"))
    fields[1] = [b"\x05"]  # the nonce
    with pytest.raises(ex.InvalidRequest):
        decode_signed_transaction(prefix + rlp.encode(fields), CHAIN_ID)


def test_an_empty_list_in_place_of_a_zero_integer_is_refused_as_non_canonical() -> None:
    raw = _signed("eip1559", nonce=0, value=0)
    prefix, fields = _fields(raw)
    fields[1] = []  # nonce 0 as an empty list instead of the empty string
    with pytest.raises(ex.InvalidRequest):
        decode_signed_transaction(prefix + rlp.encode(fields), CHAIN_ID)


# -- properties ---------------------------------------------------------------------------

_addresses = st.binary(min_size=20, max_size=20)
_storage_keys = st.lists(st.integers(0, 2**256 - 1), max_size=3)
_access_lists = st.lists(st.tuples(_addresses, _storage_keys), max_size=2)


@st.composite
def _transaction_fields(draw: st.DrawFn) -> dict:
    tx_type = draw(st.sampled_from([LEGACY_TYPE, ACCESS_LIST_TYPE, DYNAMIC_FEE_TYPE, SET_CODE_TYPE]))
    data = draw(st.binary(max_size=200))
    creates = tx_type != SET_CODE_TYPE and draw(st.booleans())
    to = None if creates else draw(_addresses)
    access_list = draw(_access_lists) if tx_type != LEGACY_TYPE else []
    authorizations = draw(st.integers(1, 2)) if tx_type == SET_CODE_TYPE else 0
    intrinsic = (
        21_000
        + sum(16 if byte else 4 for byte in data)
        + (32_000 + 2 * ((len(data) + 31) // 32) if creates else 0)
        + sum(2_400 + 1_900 * len(keys) for _, keys in access_list)
        + 25_000 * authorizations
    )
    fields = {
        "type": tx_type,
        "chainId": CHAIN_ID,
        "nonce": draw(st.integers(0, 2**64 - 2)),
        "gas": intrinsic + draw(st.integers(0, 2**40)),
        "value": draw(st.integers(0, 2**256 - 1)),
        "data": data,
        "to": None if to is None else to_checksum_address(to),
    }
    if tx_type in (LEGACY_TYPE, ACCESS_LIST_TYPE):
        fields["gasPrice"] = draw(st.integers(0, 2**256 - 1))
    else:
        max_fee = draw(st.integers(0, 2**256 - 1))
        fields["maxFeePerGas"] = max_fee
        fields["maxPriorityFeePerGas"] = draw(st.integers(0, max_fee))
    if tx_type != LEGACY_TYPE:
        fields["accessList"] = [
            {
                "address": to_checksum_address(address),
                "storageKeys": ["0x" + key.to_bytes(32, "big").hex() for key in keys],
            }
            for address, keys in access_list
        ]
    if authorizations:
        fields["authorizationList"] = [
            draw(st.sampled_from(ACCOUNTS)).sign_authorization(
                {
                    "chainId": draw(st.sampled_from([0, CHAIN_ID])),
                    "address": to_checksum_address(draw(_addresses)),
                    "nonce": n,
                }
            )
            for n in range(authorizations)
        ]
    if tx_type == LEGACY_TYPE:
        del fields["type"]
    if fields["to"] is None:
        del fields["to"]
    return fields


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=_transaction_fields(), account=st.sampled_from(ACCOUNTS))
def test_signed_transactions_round_trip_every_field(fields: dict, account) -> None:
    signed = account.sign_transaction(fields)
    raw = bytes(signed.raw_transaction)
    assume(len(raw) <= MAX_TRANSACTION_BYTES)
    result = decode_signed_transaction(raw, CHAIN_ID)
    tx = result.tx
    assert result.raw == raw
    assert result.hash == bytes(signed.hash)
    assert result.sender == address_of(account)
    assert transaction_type(tx) == fields.get("type", LEGACY_TYPE)
    assert tx.chain_id == CHAIN_ID
    assert tx.nonce == fields["nonce"]
    assert tx.gas == fields["gas"]
    assert tx.value == fields["value"]
    assert tx.data == fields["data"]
    assert tx.to == (bytes.fromhex(fields["to"][2:]) if "to" in fields else b"")
    if "gasPrice" in fields:
        assert tx.gas_price == fields["gasPrice"]
        assert tx.max_fee_per_gas == tx.max_priority_fee_per_gas == fields["gasPrice"]
    else:
        assert tx.max_fee_per_gas == fields["maxFeePerGas"]
        assert tx.max_priority_fee_per_gas == fields["maxPriorityFeePerGas"]
    if "accessList" in fields:
        expected = [
            (bytes.fromhex(e["address"][2:]), tuple(int(k, 16) for k in e["storageKeys"]))
            for e in fields["accessList"]
        ]
        assert [(bytes(a), tuple(keys)) for a, keys in tx.access_list] == expected
    if "authorizationList" in fields:
        assert [
            (a.chain_id, a.nonce, bytes(a.address), a.r, a.s, a.y_parity) for a in tx.authorization_list
        ] == [
            (a.chain_id, a.nonce, bytes(a.address), a.r, a.s, a.y_parity) for a in fields["authorizationList"]
        ]


def _mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 3))):
            position = draw(st.integers(0, len(data) - 1))
            action = draw(st.sampled_from(["set", "delete", "insert"]))
            if action == "set":
                data[position] = draw(st.integers(0, 255))
            elif action == "delete" and len(data) > 1:
                del data[position]
            else:
                data.insert(position, draw(st.integers(0, 255)))
        return bytes(data)

    return mutate()


_rlp_items = st.recursive(
    st.binary(max_size=40) | st.integers(0, 2**256).map(lambda n: n.to_bytes(33, "big").lstrip(b"\x00")),
    lambda children: st.lists(children, max_size=14),
    max_leaves=30,
)
_SEEDS = [_signed(kind) for kind in sorted(SIGNED_KINDS)]
_arbitrary_transaction_bytes = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.sampled_from([b"", b"\x00", b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"]), _rlp_items).map(
        lambda pair: pair[0] + rlp.encode(pair[1])
    ),
    *[_mutations(seed) for seed in _SEEDS],
)


@settings(max_examples=400, deadline=None)
@given(raw=_arbitrary_transaction_bytes)
@example(raw=b"\x00")
@example(raw=b"\x02" + rlp.encode([CHAIN_ID, [b"\x05"], 1, 1, 21_000, b"\x22" * 20, 1, b"", [], 1, 1, 1]))
def test_arbitrary_bytes_raise_only_conclave_errors(raw: bytes) -> None:
    try:
        decode_signed_transaction(raw, CHAIN_ID)
    except ex.ConclaveError:
        pass


# -- check_admissible -------------------------------------------------------------------

BASE_FEE = GWEI
GAS_LIMIT = 30_000_000


def _admissible(tx, *, account_nonce=0, balance=10**30, base_fee=BASE_FEE, block_gas_limit=GAS_LIMIT) -> None:
    check_admissible(
        tx, account_nonce=account_nonce, balance=balance, base_fee=base_fee, block_gas_limit=block_gas_limit
    )


def test_nonce_below_the_account_nonce_is_refused() -> None:
    tx = decoded(ALICE, nonce=4)
    with pytest.raises(ex.NonceTooLow, match="next nonce 5, tx nonce 4"):
        _admissible(tx, account_nonce=5)
    _admissible(tx, account_nonce=4)
    _admissible(tx, account_nonce=0)  # ahead of the account: the pool decides


def test_gas_above_the_block_limit_is_refused() -> None:
    tx = decoded(ALICE, gas=100_000)
    with pytest.raises(ex.GasLimitExceeded, match="tx gas 100000, block gas limit 99999"):
        _admissible(tx, block_gas_limit=99_999)
    _admissible(tx, block_gas_limit=100_000)


@pytest.mark.parametrize("kind", ["legacy-eip155", "eip2930", "eip1559"])
def test_max_fee_below_the_base_fee_is_refused(kind: str) -> None:
    fees = (
        {"maxFeePerGas": BASE_FEE, "maxPriorityFeePerGas": 0} if kind == "eip1559" else {"gasPrice": BASE_FEE}
    )
    tx = decode_signed_transaction(_signed(kind, **fees), CHAIN_ID)
    with pytest.raises(ex.FeeTooLow, match=f"maxFeePerGas {BASE_FEE}, baseFee {BASE_FEE + 1}"):
        _admissible(tx, base_fee=BASE_FEE + 1)
    _admissible(tx, base_fee=BASE_FEE)


@pytest.mark.parametrize("kind", ["legacy-eip155", "eip1559"])
def test_funds_must_cover_gas_times_max_fee_plus_value(kind: str) -> None:
    fees = (
        {"gasPrice": 3 * GWEI}
        if kind == "legacy-eip155"
        else {"maxFeePerGas": 3 * GWEI, "maxPriorityFeePerGas": 1}
    )
    tx = decode_signed_transaction(_signed(kind, gas=50_000, value=7, **fees), CHAIN_ID)
    cost = 50_000 * 3 * GWEI + 7
    assert max_cost(tx.tx) == cost
    with pytest.raises(ex.InsufficientFunds, match=f"balance {cost - 1}, tx cost {cost}, overshot 1"):
        _admissible(tx, balance=cost - 1)
    _admissible(tx, balance=cost)


def test_the_checks_apply_in_order_nonce_gas_fee_funds() -> None:
    tx = decoded(ALICE, nonce=0, gas=50_000, maxFeePerGas=GWEI, maxPriorityFeePerGas=0, value=1)
    with pytest.raises(ex.NonceTooLow):
        _admissible(tx, account_nonce=1, block_gas_limit=1, base_fee=2 * GWEI, balance=0)
    with pytest.raises(ex.GasLimitExceeded):
        _admissible(tx, block_gas_limit=1, base_fee=2 * GWEI, balance=0)
    with pytest.raises(ex.FeeTooLow):
        _admissible(tx, base_fee=2 * GWEI, balance=0)
    with pytest.raises(ex.InsufficientFunds):
        _admissible(tx, balance=0)


def test_effective_gas_price() -> None:
    dynamic = decoded(ALICE, maxFeePerGas=10, maxPriorityFeePerGas=3).tx
    assert effective_gas_price(dynamic, 5) == 8
    assert effective_gas_price(dynamic, 9) == 10
    legacy = decode_signed_transaction(_signed("legacy-eip155", gasPrice=10), CHAIN_ID).tx
    assert effective_gas_price(legacy, 5) == 10
