"""The faults a failover run injects: SENTINEL FAILOVER and SIGKILL of the Redis master, which the
sentinels repair, and SIGKILL of the PostgreSQL primary, after which the standby is promoted and
the proxy switched to it; each keeps a timeline of what happened."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from tests.faults.conftest import wait_for
from tests.faults.failover.postgres_ha import ReplicatedPostgres
from tests.faults.failover.redis_ha import SERVICE, SentinelRedis, sentinel_events


class Fault(Protocol):
    """A fault: start() injects it; recover() returns once the new primary/master is in
    place (and fails after the deadline); events is its timeline (time.time(), what), recorded
    while watching()."""

    name: str
    events: list[tuple[float, str]]

    def watching(self) -> AbstractContextManager[None]: ...

    def start(self) -> None: ...

    def recover(self, deadline: float) -> None: ...


def _until(check: Callable[[], bool], deadline: float, what: str) -> None:
    wait_for(check, max(0.0, deadline - time.time()), what)


@dataclass
class RedisFault:
    """A fault of the Redis master that the sentinels repair: the first sentinel's announcements
    are its timeline, and it is over once they all name the replica as master."""

    cache: SentinelRedis
    events: list[tuple[float, str]] = field(default_factory=list)

    def watching(self) -> AbstractContextManager[None]:
        """Record the first sentinel's announcements."""
        return sentinel_events(self.cache.sentinels[0], self.events)

    def recover(self, deadline: float) -> None:
        """Wait until every sentinel names the replica and it answers as master."""
        _until(self.cache.in_place, deadline, "the sentinels to name the new master")


@dataclass
class SentinelFailover(RedisFault):
    """SENTINEL FAILOVER on one sentinel: the replica is promoted, the old master demoted."""

    name: str = "sentinel failover"

    def start(self) -> None:
        """Ask the first sentinel to fail over."""
        client = self.cache.sentinels[0].client()
        try:
            client.sentinel_failover(SERVICE)
        finally:
            client.close()


@dataclass
class MasterKill(RedisFault):
    """SIGKILL of the Redis master: the sentinels fail over after down-after-milliseconds."""

    name: str = "redis master SIGKILL"

    def start(self) -> None:
        """Kill the master."""
        self.cache.master.kill()


@dataclass
class PrimaryKill:
    """SIGKILL of the PostgreSQL primary's postmaster; the standby is promoted and the proxy
    switched to it, dropping its open connections."""

    pg: ReplicatedPostgres
    name: str = "postgres primary SIGKILL"
    events: list[tuple[float, str]] = field(default_factory=list)

    def watching(self) -> AbstractContextManager[None]:
        """The steps are recorded as they are taken."""
        return nullcontext()

    def start(self) -> None:
        """Kill the postmaster (its backends end when they notice)."""
        pid = self.pg.primary.postmaster_pid()
        os.kill(pid, signal.SIGKILL)
        self.events.append((time.time(), f"primary's postmaster {pid} killed"))

    def recover(self, deadline: float) -> None:
        """Promote the standby, switch the proxy, wait until it takes writes through it."""
        self.pg.standby.promote()
        self.events.append((time.time(), "standby promoted"))
        self.pg.proxy.switch(self.pg.standby.port)
        self.events.append((time.time(), "proxy switched, its connections dropped"))
        _until(self.pg.writable, deadline, "the promoted standby to take writes")
        self.events.append((time.time(), "writes through the proxy"))
