"""Deterministic execution on py-evm.

Plain data in, plain data out: a parent header, an ordered batch of transactions and a
state database go in; a block (header, receipts, logs, bloom) and the state nodes it wrote
come out. No I/O happens here: storage is reached only through `state_db.NodeSource`.
"""
