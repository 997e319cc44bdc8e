"""What a new chain starts with unless told otherwise (importable without py-evm)."""

DEFAULT_CHAIN_ID = 1337
DEFAULT_GAS_LIMIT = 30_000_000
