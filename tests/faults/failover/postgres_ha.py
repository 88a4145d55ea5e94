"""PostgreSQL with a synchronous standby for the failover runs: a primary and a standby made by
pg_basebackup, clusters of the test's own on loopback, with the proxy the IdP connects through
in front of the primary; promoting the standby is the fault's recovery."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.faults.conftest import PG_BIN, Postgres, wait_for
from tests.faults.failover.proxy import Proxy

STANDBY = "standby1"  # the synchronous standby's application_name


class Node(Postgres):
    """A PostgreSQL cluster of the test's own started with settings of its own (a primary or a
    standby)."""

    def postmaster_pid(self) -> int:
        """The postmaster's process id (the first line of postmaster.pid)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def follow(self, primary: Node) -> None:
        """Make this cluster a standby of primary (pg_basebackup -R), streaming under the
        synchronous standby's name."""
        if self.prefix:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(PG_BIN / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(self.data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
        with (self.data / "postgresql.auto.conf").open("a") as auto:  # the last one counts
            auto.write(
                f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=postgres "
                f"application_name={STANDBY}'\n"
            )

    def promote(self) -> None:
        """Promote this standby to a primary and wait until it is one."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "promote")


@dataclass
class ReplicatedPostgres:
    """A primary, its synchronous standby and the proxy the IdP connects through."""

    primary: Node
    standby: Node
    proxy: Proxy

    @property
    def url(self) -> str:
        """The database URL through the proxy."""
        return f"postgresql://postgres@127.0.0.1:{self.proxy.port}/postgres"

    def writable(self) -> bool:
        """A transaction id can be assigned through the proxy (a primary answers)."""
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT txid_current()")
                return True
        except psycopg.Error:
            return False


def _sync_standby(primary: Node) -> bool:
    with psycopg.connect(primary.url, autocommit=True, connect_timeout=2) as conn:
        row = conn.execute(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s", (STANDBY,)
        ).fetchone()
    return row is not None and row[0] == "sync"


@contextmanager
def replicated_postgres() -> Iterator[ReplicatedPostgres]:
    """A primary (synchronous_standby_names on its command line only, so the promoted standby
    never waits for a standby of its own), a standby from pg_basebackup -R, and a proxy in
    front of the primary; all stopped at the end."""
    dirs = [Path(tempfile.mkdtemp(prefix="stuudium-pg-", dir="/tmp")) for _ in range(2)]
    primary = Node(
        dirs[0],
        f"-c wal_level=replica -c max_wal_senders=5 -c synchronous_commit=on "
        f"-c synchronous_standby_names={STANDBY}",
    )
    standby = Node(dirs[1], "-c hot_standby=on")
    proxy: Proxy | None = None
    try:
        primary.init()
        with (primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        primary.start()
        standby.follow(primary)
        standby.start()
        wait_for(lambda: _sync_standby(primary), 30, "the synchronous standby")
        proxy = Proxy(primary.port).start()
        yield ReplicatedPostgres(primary, standby, proxy)
    finally:
        if proxy is not None:
            proxy.stop()
        for node in (standby, primary):
            if node.running():
                node.stop("immediate")
        for directory in dirs:
            shutil.rmtree(directory, ignore_errors=True)
