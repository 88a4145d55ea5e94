"""Redis behind Sentinel for the failover runs: a master and its replica, three sentinels
watching them (quorum 2, the master judged down after 1 s), all redis-servers of the test's own
on loopback; what the sentinels name as master, and a recorder of what they announce."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from tests.faults.conftest import REDIS_SERVER, redis_server_args, wait_for, wait_for_redis
from tests.support import free_port

SERVICE = "stuudium"  # the Sentinel service name in REDIS_URL


class RedisProcess:
    """One redis-server of the test's own (a master, a replica or a sentinel) on loopback."""

    def __init__(self, directory: Path, name: str) -> None:
        self.dir = directory / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        """A client of this server (short timeouts, str answers)."""
        return redis.Redis(
            port=self.port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True
        )

    def start_server(self, *extra: str) -> RedisProcess:
        """Start a data server without persistence and wait until it answers."""
        return self._start([*redis_server_args(self.port, self.dir), *extra])

    def start_sentinel(self, master_port: int) -> RedisProcess:
        """Start a sentinel watching the master at master_port (quorum 2 of 3)."""
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return self._start([REDIS_SERVER, str(conf), "--sentinel"])

    def _start(self, args: list[str]) -> RedisProcess:
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_redis(self.port, f"redis-server on {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL the process this object started."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)


class SentinelRedis:
    """A master, its replica and three sentinels; REDIS_URL names the sentinels."""

    def __init__(self, directory: Path) -> None:
        self.master = RedisProcess(directory, "master")
        self.replica = RedisProcess(directory, "replica")
        self.sentinels = [RedisProcess(directory, f"sentinel{i}") for i in range(3)]
        nodes = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        self.url = f"redis+sentinel://{nodes}/{SERVICE}/0"

    def start(self) -> SentinelRedis:
        """Start everything; return once every sentinel knows the replica and the others."""
        self.master.start_server()
        self.replica.start_server("--replicaof", "127.0.0.1", str(self.master.port))
        wait_for(lambda: _role(self.replica) == ["slave", "connected"], 15, "the replica's sync")
        for sentinel in self.sentinels:
            sentinel.start_sentinel(self.master.port)
        wait_for(self._ready, 30, "the sentinels to see the replica and each other")
        return self

    def _ready(self) -> bool:
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                master: Any = client.sentinel_master(SERVICE)
                replicas: Any = client.sentinel_slaves(SERVICE)
            except redis.RedisError:
                return False
            finally:
                client.close()
            healthy = [
                r
                for r in replicas
                if r["port"] == self.replica.port
                and not (r["is_sdown"] or r["is_disconnected"])
                and r.get("master-link-status") == "ok"
            ]
            if master["num-other-sentinels"] != 2 or not healthy:
                return False
        return True

    def named_masters(self) -> set[int | None]:
        """The master port each sentinel names now (None: it did not answer)."""
        named: set[int | None] = set()
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                addr: Any = client.sentinel_get_master_addr_by_name(SERVICE)
                named.add(int(addr[1]) if addr else None)
            except redis.RedisError:
                named.add(None)
            finally:
                client.close()
        return named

    def in_place(self) -> bool:
        """Every sentinel names the replica as master, and it answers as one."""
        return self.named_masters() == {self.replica.port} and _role(self.replica)[:1] == ["master"]

    def stop(self) -> None:
        """Kill every process started here."""
        for process in [*self.sentinels, self.replica, self.master]:
            process.kill()


def _role(server: RedisProcess) -> list[Any]:
    """ROLE of a data server, shortened: ["master"] or ["slave", link state]; [] when it does
    not answer."""
    client = server.client()
    try:
        role = client.execute_command("ROLE")
        if role[0] == "slave":
            return [role[0], role[3]]
        return [role[0]]
    except redis.RedisError:
        return []
    finally:
        client.close()


@contextmanager
def sentinel_redis(directory: Path) -> Iterator[SentinelRedis]:
    """A Redis master with a replica behind three sentinels, all stopped at the end."""
    cache = SentinelRedis(directory)
    try:
        yield cache.start()
    finally:
        cache.stop()


@contextmanager
def sentinel_events(sentinel: RedisProcess, events: list[tuple[float, str]]) -> Iterator[None]:
    """Record what a sentinel announces (+promoted-slave, +switch-master, +convert-to-slave,
    ...) from a thread of its own."""
    client = sentinel.client()
    pubsub = client.pubsub()
    pubsub.psubscribe("*")
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            except redis.RedisError:
                return
            if message and message["channel"] != "__sentinel__:hello":
                events.append((time.time(), f"{message['channel']} {message['data']}"))

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        pubsub.close()
        client.close()
