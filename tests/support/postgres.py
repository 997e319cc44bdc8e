"""A throwaway PostgreSQL server on loopback, for tests and for trying a node on PostgreSQL.

Uses Debian's server binaries (package `postgresql`, which `.ci/run` installs). The cluster
lives in a temporary folder; when run as root, it runs as the `postgres` user, since
PostgreSQL refuses to run as root.

    python -m tests.support.postgres    # starts a server, prints its URL, stops on Ctrl-C
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

START_TIMEOUT = 30.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _bin_dir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("PostgreSQL server binaries not found: install Debian's `postgresql` package")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server; `url(name)` creates database `name` and returns its SQLAlchemy URL."""

    root: Path
    port: int
    bin_dir: Path
    user: str | None

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        subprocess.run(prefix + list(command), check=True, capture_output=True, text=True)

    @classmethod
    def start(cls) -> PostgresServer:
        bin_dir = _bin_dir()
        root = Path(tempfile.mkdtemp(prefix="conclave-pg-"))
        user = "postgres" if os.geteuid() == 0 else None
        if user:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(root, _free_port(), bin_dir, user)
        data = root / "data"
        server._run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "conclave",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} -c max_connections=200"
        server._run(
            str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                psycopg.connect(server._dsn("postgres"), connect_timeout=2).close()
                return server
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _dsn(self, database: str) -> str:
        return f"postgresql://conclave@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
            conn.execute(f'CREATE DATABASE "{database}"')
        return f"postgresql+psycopg://conclave@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def main() -> int:
    server = PostgresServer.start()
    print(server.url("conclave"), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
