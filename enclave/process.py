"""The host's side of an enclave in its own OS process.

`EnclaveProcess` offers the `EnclaveAPI` by sending each call as a message
(`enclave.messages`) and waiting for the answer. If the process dies, the call is tried
once more on a fresh process: every enclave call is safe to repeat, since the enclave
keeps nothing that is not in the ledger (it reloads its head from the database), and
`execute` has no effect until the host stores the block and calls `committed`.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evm_runtime.chain import ChainParams
from evm_runtime.types import ZERO_ADDRESS, Address
from ledger.store import BlockRecord

from .messages import (
    CALL,
    FAILURE,
    HELLO,
    METHODS,
    PROTOCOL_VERSION,
    RESULT,
    EnclaveFacts,
    EnclaveFailure,
    ProtocolError,
    raise_failure,
    read_frame,
    write_frame,
)

log = logging.getLogger(__name__)

CHANNEL_ERRORS = (EOFError, BrokenPipeError, ConnectionError, OSError)


@dataclass(frozen=True)
class EnclaveLaunch:
    """How to start the enclave process."""

    database_url: str
    params: ChainParams
    coinbase: Address = ZERO_ADDRESS
    keys_dir: Path | None = None
    renew_foreign_keys: bool = False
    log_level: str = "warning"

    def command(self) -> list[str]:
        keys = [] if self.keys_dir is None else ["--keys-dir", str(self.keys_dir)]
        renew = ["--renew-foreign-keys"] if self.renew_foreign_keys else []
        return [
            sys.executable,
            "-m",
            "enclave.main",
            "--database-url",
            self.database_url,
            "--chain-id",
            str(self.params.chain_id),
            "--gas-limit",
            str(self.params.gas_limit),
            "--coinbase",
            self.coinbase.hex(),
            "--log-level",
            self.log_level,
            *keys,
            *renew,
        ]


class EnclaveProcess:
    """An `EnclaveAPI` whose enclave runs in a child process, restarted when it dies."""

    def __init__(self, launch: EnclaveLaunch, *, observe: Callable[[str, float], None] | None = None) -> None:
        """`observe(method, seconds)` is told how long each call took, answer included."""
        self._launch = launch
        self._observe = observe
        self._lock = threading.Lock()
        self.restarts = 0
        self._running: tuple[subprocess.Popen[bytes] | None, EnclaveFacts] = self._start()

    # -- lifecycle --------------------------------------------------------------------

    def _start(self) -> tuple[subprocess.Popen[bytes], EnclaveFacts]:
        process = subprocess.Popen(
            self._launch.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            write_frame(process.stdin, [HELLO, PROTOCOL_VERSION])
            reply = read_frame(process.stdout)
        except CHANNEL_ERRORS as exc:
            process.kill()
            raise EnclaveFailure(f"the enclave process did not start: {exc}") from None
        if not (isinstance(reply, list) and reply[:1] == [RESULT] and isinstance(reply[1], EnclaveFacts)):
            process.kill()
            raise ProtocolError(f"the enclave answered HELLO with {reply!r}")
        facts: EnclaveFacts = reply[1]
        if facts.params != self._launch.params:
            process.kill()
            raise ProtocolError(f"the enclave runs {facts.params}, the host asked for {self._launch.params}")
        log.info("enclave process %d started (measurement %s)", facts.pid, facts.measurement.hex())
        return process, facts

    def _restart(self) -> None:
        self._stop_process()
        log.warning("enclave process gone: restarting it (restart %d)", self.restarts + 1)
        self._running = self._start()
        self.restarts += 1

    def _stop_process(self) -> None:
        process = self._running[0]
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def ensure_running(self) -> None:
        """Start a fresh enclave process if the current one has died."""
        with self._lock:
            process = self._running[0]
            if process is not None and process.poll() is not None:
                self._restart()

    def close(self) -> None:
        with self._lock:
            self._stop_process()
            self._running = (None, self._running[1])

    def status(self) -> dict[str, object]:
        process, facts = self._running
        alive = process is not None and process.poll() is None
        return {
            "mode": "process",
            "pid": facts.pid,
            "alive": alive,
            "restarts": self.restarts,
            "measurement": "0x" + facts.measurement.hex(),
        }

    @property
    def pid(self) -> int:
        return self._running[1].pid

    # -- the EnclaveAPI ----------------------------------------------------------------

    @property
    def params(self) -> ChainParams:
        return self._running[1].params

    @property
    def measurement(self) -> bytes:
        return self._running[1].measurement

    def invoke(self, method: str, *args: Any) -> Any:
        """Send one call and return its result, raising the enclave's error as the same type."""
        if method not in METHODS:
            raise AttributeError(f"{method} is not an enclave call")
        started = time.perf_counter()
        with self._lock:
            reply = self._exchange([CALL, method, list(args)])
        if self._observe is not None:
            self._observe(method, time.perf_counter() - started)
        if reply[0] == RESULT:
            return reply[1]
        raise_failure(*reply[1:])

    def _exchange(self, message: list[Any]) -> list[Any]:
        for attempt in range(2):
            process = self._running[0]
            try:
                if process is None or process.poll() is not None:
                    raise EOFError("the enclave process is not running")
                assert process.stdin is not None and process.stdout is not None
                write_frame(process.stdin, message)
                reply = read_frame(process.stdout)
            except CHANNEL_ERRORS:
                if attempt:
                    raise EnclaveFailure("the enclave process failed twice in a row") from None
                self._restart()
                continue
            if not (isinstance(reply, list) and reply and reply[0] in (RESULT, FAILURE)):
                raise ProtocolError(f"unexpected answer from the enclave: {reply!r}")
            return reply
        raise AssertionError("unreachable")

    def committed(self, block: BlockRecord) -> None:
        """Tell the enclave `block` is stored, without sending back what it produced."""
        self.invoke("committed", replace(block, transactions=(), state_writes=None))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name in METHODS:
            return lambda *args: self.invoke(name, *args)
        raise AttributeError(name)
