"""Disaster recovery on the host's side (docs/recovery.md).

- `keep_recovery_set_current`: after genesis, at start and after every block, the host asks
  the enclave whether governance changed what the recovery set depends on (the members
  holding recovery keys, the threshold, the ledger secret version) and stores the new set it
  issues beside the ledger (`ledger.recovery_sets`).
- `recover`: `conclave node --recover` on a ledger this node's enclave cannot read (every
  node lost, only the ledger files kept). It serves `/node/status`, `/node/quote` (members
  attest the enclave before they submit) and `/recovery/...` only, until members' shares
  restore the ledger secrets in the enclave; the node then starts as usual on that ledger.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from enclave.interface import EnclaveAPI
from enclave.local import InProcessEnclave
from enclave.messages import EnclaveFailure
from enclave.process import EnclaveLaunch, EnclaveProcess
from enclave.recovery import RecoverySet
from evm_runtime.chain import ChainParams
from evm_runtime.exceptions import ConclaveError
from ledger.database import make_engine
from ledger.recovery_sets import save_recovery_set
from ledger.store import LedgerStore
from migrations import upgrade_to_head

if TYPE_CHECKING:
    from .node import NodeConfig
    from .serving import ServeOptions

log = logging.getLogger(__name__)


def keep_recovery_set_current(enclave: EnclaveAPI, engine: Engine) -> None:
    """Store the recovery set the enclave issues, if it issues one now. A failure is logged,
    not raised: the enclave issues it again at the next block or start."""
    try:
        issued = enclave.recovery_issue()
        if issued is None:
            return
        save_recovery_set(engine, RecoverySet.from_bytes(issued).block_number, issued)
    except (ConclaveError, EnclaveFailure, SQLAlchemyError, ValueError) as failed:
        log.warning("the recovery set could not be issued now (it is retried): %s", failed)


@dataclass
class RecoveringNode:
    """What the recovery endpoints need of a node (`gateway.recovery_rest`)."""

    params: ChainParams
    store: LedgerStore
    enclave: EnclaveAPI

    def status(self) -> dict[str, object]:
        recovery = self.enclave.recovery_status()
        return {
            "status": "recovering" if recovery.sealed else "recovered",
            "chainId": self.params.chain_id,
            "latestBlock": head.number if (head := self.store.head()) is not None else None,
            "enclave": {"measurement": "0x" + self.enclave.measurement.hex()},
        }


def recovery_app(node: RecoveringNode) -> FastAPI:
    """What a node in recovery mode serves: `/node/status`, `/node/quote` and `/recovery/...`."""
    from .quote_rest import router as quote_router
    from .recovery_rest import router

    app = FastAPI(title="Conclave node (recovery mode)")
    app.state.node = node
    app.include_router(router)
    app.include_router(quote_router)

    @app.get("/node/status")
    async def node_status(request: Request) -> dict[str, object]:
        return request.app.state.node.status()  # type: ignore[no-any-return]

    return app


def _open_enclave(config: NodeConfig, store: LedgerStore, params: ChainParams) -> EnclaveAPI:
    """The node's enclave, as `gateway.node.Node` opens it."""
    if config.enclave_mode == "in-process":
        return InProcessEnclave(store, params, coinbase=config.coinbase, keys_dir=config.enclave_dir)
    launch = EnclaveLaunch(config.database_url, params, config.coinbase, keys_dir=config.enclave_dir)
    return EnclaveProcess(launch)  # type: ignore[return-value]


def recover(
    config: NodeConfig, options: ServeOptions, announce: Callable[[dict[str, Any]], None]
) -> int | None:
    """Serve recovery until the enclave reads the ledger: None then (start the node as
    usual), or an exit status (2: nothing to recover or the port is taken; 0: stopped)."""
    import uvicorn

    engine = make_engine(config.database_url)
    upgrade_to_head(engine)
    store = LedgerStore(engine)
    params = ChainParams(chain_id=config.chain_id, gas_limit=config.gas_limit)
    enclave: EnclaveAPI | None = None
    try:
        if store.head() is None:
            print("error: --recover: the database holds no ledger to recover", file=sys.stderr)
            return 2
        enclave = _open_enclave(config, store, params)
        if not enclave.recovery_status().sealed:
            log.info("this node's enclave reads the ledger: no recovery is needed")
            return None
        try:
            listener = socket.create_server((options.host, options.port), backlog=128)
        except OSError as exc:
            print(f"error: cannot listen on {options.host}:{options.port} ({exc.strerror})", file=sys.stderr)
            return 2
        app = recovery_app(RecoveringNode(params, store, enclave))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        recovered = False

        def on_recovered() -> None:
            nonlocal recovered
            recovered = True
            server.should_exit = True

        app.state.on_recovered = on_recovered
        host, port = listener.getsockname()[:2]
        keys = enclave.node_keys()
        announce(
            {
                "recovering": True,
                "rpcUrl": f"http://{options.host}:{port}",
                "nodePublicKey": "0x" + keys.public_key.hex(),
                "chainId": params.chain_id,
            }
        )
        # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal to the handlers
        # it found: these note it, so that a stop asked as the node recovers is not lost (nor
        # one during the start that follows: the previous handlers are back by then).
        stopped = False

        def on_stop(*_: object) -> None:
            nonlocal stopped
            stopped = True

        previous = {s: signal.signal(s, on_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run(sockets=[listener])
        finally:
            for stop_signal, handler in previous.items():
                signal.signal(stop_signal, handler)
        listener.close()
        if not recovered or stopped:
            return 0
        log.info("recovered: the node starts on the restored ledger")
        return None
    finally:
        if isinstance(enclave, EnclaveProcess):
            enclave.close()
        store.close()
        engine.dispose()
