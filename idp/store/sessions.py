"""The SSO session's hot copy: the session's JSON under its cookie hash, and its sid key (the
session is live while it exists), both with the idle time, slid on use, never past the cap."""

from __future__ import annotations

import time
from typing import Any

from idp.store import Batch, batch, client, keys, scripts


def touch(cookie_hash: str, idle: int) -> str | None:
    """Read a session's copy and slide its expiry (one round trip); None when gone."""
    raw = scripts.run(
        scripts.TOUCH_SESSION, client(), [keys.session(cookie_hash)], [idle, int(time.time())]
    )
    return str(raw) if raw else None


def publish(pipe: Batch, cookie_hash: str, sid: str, copy: str, ttl: int) -> None:
    """Queue a new session's copy and sid key on a batch."""
    pipe.set(keys.session(cookie_hash), copy, ex=ttl)
    pipe.set(keys.sid(sid), cookie_hash, ex=ttl)


def replace(old_hash: str, cookie_hash: str, sid: str, copy: str, ttl: int) -> None:
    """Move a session's copy to a new cookie hash (a renewed secret), atomically."""
    pipe = batch()
    pipe.delete(keys.session(old_hash))
    publish(pipe, cookie_hash, sid, copy, ttl)
    pipe.execute()


def forget(pairs: list[tuple[str, str]]) -> None:
    """Remove sessions (sid, cookie hash), after their end is committed in SQL."""
    if not pairs:
        return
    found: list[Any] = []
    for sid, cookie_hash in pairs:
        found += [keys.session(cookie_hash), keys.sid(sid)]
    client().delete(*found)


def touch_for_refresh(sid: str, grant_id: str, idle: int) -> int:
    """Slide a session's expiry for a refresh: 1; 0 when it idled out; -1 when the grant is
    deny-listed (one round trip)."""
    return int(
        scripts.run(
            scripts.TOUCH_FOR_REFRESH,
            client(),
            [keys.sid(sid), keys.denied_grant(grant_id)],
            [idle, int(time.time())],
        )
    )


def alive(sids: list[str]) -> list[bool]:
    """Whether each session's sid key is still there (one round trip)."""
    pipe = batch(transaction=False)
    for sid in sids:
        pipe.exists(keys.sid(sid))
    return [bool(found) for found in pipe.execute()]


def remaining(sids: list[str]) -> list[int]:
    """Each session's remaining idle time in seconds (Redis TTL: -2 when gone)."""
    pipe = batch(transaction=False)
    for sid in sids:
        pipe.ttl(keys.sid(sid))
    return [int(ttl) for ttl in pipe.execute()]
