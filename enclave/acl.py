"""The visibility ACL: the one decision of who may see what is confidential.

- A confidential contract (its code, storage, balance, nonce, proofs, calls into it) is
  visible to its parties and auditors: `evm_runtime.confidential.Visibility` decides, on
  the state read, for the signed-in reader (anonymous readers see no confidential
  contract).
- A confidential transaction (its payload, receipt, logs, traces) is visible to its
  sender, to the parties it named (`privateFor`), and to whoever may see one of the
  confidential contracts it reached.
- A waiting confidential transaction is visible to its audience, fixed at admission.

Everything else is public. Nothing here reads or writes: callers hand in the facts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from evm_runtime.types import Address, ExecutedTransaction


def may_see_transaction(
    viewer: Address | None, record: ExecutedTransaction, may_see_contract: Callable[[Address], bool]
) -> bool:
    """Whether `viewer` may see the confidential transaction `record` (opened)."""
    if viewer is None:
        return False
    if viewer == record.sender or viewer in (record.private_for or ()):
        return True
    return any(may_see_contract(contract) for contract in record.reached)


def may_see_pending(viewer: Address | None, audience: Collection[Address] | None) -> bool:
    """Whether `viewer` may see a waiting transaction whose audience is `audience`
    (None: a public transaction)."""
    return audience is None or (viewer is not None and viewer in audience)
