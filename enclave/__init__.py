"""The trust boundary: execution, state and (later) keys, sealing and the visibility ACL.

The host (gateway, storage, networking) reaches execution and state only through
`interface.EnclaveAPI`. `local.InProcessEnclave` implements it in the host's process;
the separate-process implementation speaks the same interface over messages. Importing
the package installs the system contracts (governance) into execution.
"""

from evm_runtime.system_contracts import install
from governance.system_contract import GovernanceContract

from .attestation import verify_validator_quote

install(GovernanceContract(verify_quote=verify_validator_quote))
"""Conclave's system contracts run wherever the enclave's execution does."""
