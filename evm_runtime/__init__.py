"""Deterministic execution on py-evm.

Plain data in, plain data out: a parent header, an ordered batch of transactions and a
state database go in; a block (header, receipts, logs, bloom) and the state nodes it wrote
come out. No I/O happens here: storage is reached only through `state_db.NodeSource`.
"""

import os

os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
# Keccak in C (safe-pysha3), ~6x faster than pycryptodome's on the short inputs of tries and
# storage slots; eth-hash would pick pycryptodome first, which is installed for Shamir sharing.
