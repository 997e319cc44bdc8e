"""The host's side of an enclave in its own OS process.

`EnclaveProcess` offers the `EnclaveAPI` by sending each call as a message
(`enclave.messages`) and waiting for the answer. If the process dies, the call is tried
once more on a fresh process: every enclave call is safe to repeat, since the enclave
keeps nothing that is not in the ledger (it reloads its head from the database), and
`execute` has no effect until the host stores the block and calls `committed`.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from evm_runtime.chain import ChainParams
from evm_runtime.types import ZERO_ADDRESS, Address
from ledger.store import BlockRecord

from .messages import (
    BLOCK_CALLS,
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
            "-P",  # not the working directory's `enclave/` (a data directory's keys) as the package
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


@dataclass
class _Channel:
    """One pipe pair to the enclave process, and the lock that keeps one call on it at a time."""

    to_enclave: IO[bytes]
    from_enclave: IO[bytes]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        for stream in (self.to_enclave, self.from_enclave):
            stream.close()

    @property
    def closed(self) -> bool:
        return self.to_enclave.closed or self.from_enclave.closed


@dataclass
class _Running:
    process: subprocess.Popen[bytes] | None
    facts: EnclaveFacts
    block: _Channel | None
    """The channel of `BLOCK_CALLS` (the process's stdin and stdout)."""
    read: _Channel | None
    """The channel of every other call (a second pipe pair)."""
    generation: int = 0


class EnclaveProcess:
    """An `EnclaveAPI` whose enclave runs in a child process, restarted when it dies."""

    def __init__(self, launch: EnclaveLaunch, *, observe: Callable[[str, float], None] | None = None) -> None:
        """`observe(method, seconds)` is told how long each call took, answer included."""
        self._launch = launch
        self._observe = observe
        self._lifecycle = threading.Lock()
        self.restarts = 0
        self._running: _Running = self._start(0)

    # -- lifecycle --------------------------------------------------------------------

    def _start(self, generation: int) -> _Running:
        read_in, to_read = os.pipe()  # host -> enclave, read channel
        from_read, read_out = os.pipe()  # enclave -> host, read channel
        process = subprocess.Popen(
            [*self._launch.command(), "--read-channel", f"{read_in},{read_out}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            pass_fds=(read_in, read_out),
        )
        os.close(read_in)
        os.close(read_out)
        assert process.stdin is not None and process.stdout is not None
        # Answers are read buffered (a frame's length and body in one read); calls are written
        # unbuffered, one write each.
        block = _Channel(process.stdin, io.BufferedReader(process.stdout))
        read = _Channel(os.fdopen(to_read, "wb", buffering=0), os.fdopen(from_read, "rb"))
        try:
            write_frame(block.to_enclave, [HELLO, PROTOCOL_VERSION])
            reply = read_frame(block.from_enclave)
        except CHANNEL_ERRORS as exc:
            process.kill()
            read.close()
            raise EnclaveFailure(f"the enclave process did not start: {exc}") from None
        if not (isinstance(reply, list) and reply[:1] == [RESULT] and isinstance(reply[1], EnclaveFacts)):
            process.kill()
            read.close()
            raise ProtocolError(f"the enclave answered HELLO with {reply!r}")
        facts: EnclaveFacts = reply[1]
        if facts.params != self._launch.params:
            process.kill()
            read.close()
            raise ProtocolError(f"the enclave runs {facts.params}, the host asked for {self._launch.params}")
        log.info("enclave process %d started (measurement %s)", facts.pid, facts.measurement.hex())
        return _Running(process, facts, block, read, generation)

    def _restart(self, failed: _Running) -> None:
        """Replace the process `failed` ran on, unless another call has already done so."""
        with self._lifecycle:
            if self._running is not failed:
                return
            self._stop_process()
            log.warning("enclave process gone: restarting it (restart %d)", self.restarts + 1)
            self._running = self._start(failed.generation + 1)
            self.restarts += 1

    def _stop_process(self) -> None:
        running = self._running
        if running.process is None:
            return
        for channel in (running.block, running.read):
            if channel is not None:
                channel.close()
        try:
            running.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()

    def ensure_running(self) -> None:
        """Start a fresh enclave process if the current one has died."""
        running = self._running
        if running.process is not None and running.process.poll() is not None:
            self._restart(running)

    def close(self) -> None:
        with self._lifecycle:
            self._stop_process()
            self._running = _Running(None, self._running.facts, None, None, self._running.generation + 1)

    def status(self) -> dict[str, object]:
        running = self._running
        alive = running.process is not None and running.process.poll() is None
        return {
            "mode": "process",
            "pid": running.facts.pid,
            "alive": alive,
            "restarts": self.restarts,
            "measurement": "0x" + running.facts.measurement.hex(),
        }

    @property
    def pid(self) -> int:
        return self._running.facts.pid

    # -- the EnclaveAPI ----------------------------------------------------------------

    @property
    def params(self) -> ChainParams:
        return self._running.facts.params

    @property
    def measurement(self) -> bytes:
        return self._running.facts.measurement

    def invoke(self, method: str, *args: Any) -> Any:
        """Send one call and return its result, raising the enclave's error as the same type."""
        if method not in METHODS:
            raise AttributeError(f"{method} is not an enclave call")
        started = time.perf_counter()
        reply = self._exchange(method in BLOCK_CALLS, [CALL, method, list(args)])
        if self._observe is not None:
            self._observe(method, time.perf_counter() - started)
        if reply[0] == RESULT:
            return reply[1]
        raise_failure(*reply[1:])

    def _exchange(self, on_block_channel: bool, message: list[Any]) -> list[Any]:
        for attempt in range(2):
            running = self._running
            channel = running.block if on_block_channel else running.read
            try:
                if channel is None or running.process is None or running.process.poll() is not None:
                    raise EOFError("the enclave process is not running")
                with channel.lock:
                    write_frame(channel.to_enclave, message)
                    reply = read_frame(channel.from_enclave)
            except (*CHANNEL_ERRORS, ValueError) as failed:
                # A thread that found the process gone closes its channels while restarting
                # it: another one using them meanwhile gets ValueError (a closed file).
                if isinstance(failed, ValueError) and not channel.closed:
                    raise
                if attempt:
                    raise EnclaveFailure("the enclave process failed twice in a row") from None
                self._restart(running)
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
