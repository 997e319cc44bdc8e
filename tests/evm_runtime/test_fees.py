"""Fee rules: the blob base fee (EIP-4844 with Prague's update fraction)."""

from __future__ import annotations

from evm_runtime.fees import blob_base_fee


def test_the_blob_base_fee_starts_at_one_wei_and_grows_with_excess() -> None:
    assert blob_base_fee(0) == 1
    assert blob_base_fee(5_007_716 * 10) > blob_base_fee(5_007_716) > 1
