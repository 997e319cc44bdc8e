"""The enclave process: `python -m enclave.main`, spoken to in frames on stdin and stdout.

It opens the ledger database itself (to read state and blocks; it never writes them),
runs an `InProcessEnclave`, and answers the host's calls (`enclave.messages`): those of
the block channel (stdin, stdout) on the main thread, those of the read channel (the pipe
pair `--read-channel` names) on a second thread, one call at a time on each. Anything it
logs goes to stderr: stdout carries frames only.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import IO, Any

from evm_runtime.chain import ChainParams
from evm_runtime.exceptions import ConclaveError
from evm_runtime.types import Address
from ledger.database import make_engine
from ledger.store import LedgerStore

from .interface import EnclaveAPI
from .local import InProcessEnclave
from .messages import (
    CALL,
    HELLO,
    METHODS,
    PROTOCOL_VERSION,
    RESULT,
    EnclaveFacts,
    ProtocolError,
    decode,
    failure,
    guard_transactions,
    read_body,
    read_frame,
    write_frame,
)

log = logging.getLogger(__name__)
ALONE_SWITCH_INTERVAL = 0.001
SHARED_SWITCH_INTERVAL = 0.005  # Python's default


def serve(enclave: InProcessEnclave, inbox: IO[bytes], outbox: IO[bytes]) -> None:
    """Answer HELLO, then every call, until the host closes the channel."""
    hello = read_frame(inbox)
    if hello != [HELLO, PROTOCOL_VERSION]:
        write_frame(
            outbox, failure(ProtocolError(f"expected HELLO of protocol {PROTOCOL_VERSION}, got {hello!r}"))
        )
        return
    facts = EnclaveFacts(PROTOCOL_VERSION, enclave.params, enclave.measurement, os.getpid())
    write_frame(outbox, [RESULT, facts])
    serve_calls(enclave, inbox, outbox)


def serve_calls(enclave: InProcessEnclave, inbox: IO[bytes], outbox: IO[bytes]) -> None:
    """Answer calls until the host closes the channel."""
    while True:
        try:
            body = read_body(inbox)
            write_frame(outbox, _answer(enclave, body))
        except (EOFError, BrokenPipeError, OSError):
            return  # the host has gone: so does its enclave


def pace_threads(enclave: EnclaveAPI) -> None:
    """How soon the enclave's two threads take the interpreter from each other, by the
    validators at the head. Alone (one validator, or none): every 1 ms, so admissions and
    reads do not wait out a block's execution (measured: transfers/s x1.2-1.3). With other
    validators: Python's default 5 ms, so the execution the network waits for keeps it
    (4 validators, one run each: 107 tx/s, against 83-91 at 1 ms)."""
    alone = len(enclave.validators()) <= 1
    sys.setswitchinterval(ALONE_SWITCH_INTERVAL if alone else SHARED_SWITCH_INTERVAL)


def _answer(enclave: InProcessEnclave, body: bytes) -> list[Any]:
    try:
        message = decode(body)
        if not (isinstance(message, list) and len(message) == 3 and message[0] == CALL):
            raise ProtocolError("expected [CALL, method, args]")
        _, method, args = message
        if method not in METHODS:
            raise ProtocolError(f"{method!r} is not an enclave call")
        result = getattr(enclave, method)(*args)
        if method == "committed":
            pace_threads(enclave)
        return [RESULT, result]
    except Exception as error:
        if not isinstance(error, (ProtocolError, ConclaveError)):
            log.exception("enclave call failed")
        return failure(error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enclave.main", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--chain-id", type=int, required=True)
    parser.add_argument("--gas-limit", type=int, required=True)
    parser.add_argument("--coinbase", default="00" * 20, help="hex, without 0x")
    parser.add_argument("--keys-dir", type=Path, default=None, help="where the sealed keys are kept")
    parser.add_argument(
        "--renew-foreign-keys", action="store_true", help="dev: new keys if sealed by other code"
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--read-channel", default=None, metavar="IN,OUT", help="the file descriptors of the read channel"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="enclave %(levelname)s: %(message)s"
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the host, which closes the channel
    inbox, outbox = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the channel
    engine = make_engine(args.database_url)
    store = LedgerStore(engine)
    params = ChainParams(chain_id=args.chain_id, gas_limit=args.gas_limit)
    enclave = InProcessEnclave(
        store,
        params,
        coinbase=Address(bytes.fromhex(args.coinbase)),
        keys_dir=args.keys_dir,
        renew_foreign_keys=args.renew_foreign_keys,
    )
    guard_transactions(enclave.transaction_seal_key(), params.chain_id)
    if args.read_channel is not None:
        read_in, read_out = (int(fd) for fd in args.read_channel.split(","))
        reads = threading.Thread(
            target=serve_calls,
            args=(enclave, os.fdopen(read_in, "rb"), os.fdopen(read_out, "wb", buffering=0)),
            name="read-channel",
            daemon=True,
        )
        reads.start()
    try:
        serve(enclave, inbox, outbox)
    finally:
        store.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
