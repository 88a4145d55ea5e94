"""The SSO session's hot copy: the session's JSON under its cookie hash, and its sid key (the
session is live while it exists), both with the idle time, slid on use, never past the cap; the
marks of cookies that matched nothing and of sessions just ended."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from idp.store import Batch, batch, client, keys, scripts

# A cookie that matched no live session in SQL is not looked up there again for this long.
MISS_SECONDS = 30
# A session's end keeps a concurrent read from SQL from writing its copy back this long.
ENDED_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Touched:
    """What Redis knows of a cookie: its session's copy (and whether SQL's last_seen is a step
    behind), that it matches nothing, or nothing (then SQL decides)."""

    copy: str | None = None
    stamp_due: bool = False
    gone: bool = False


_GONE = Touched(gone=True)
_UNKNOWN = Touched()


def touch(cookie_hash: str, idle: int, step: int) -> Touched:
    """Read a session's copy and slide its expiry (one round trip)."""
    found = scripts.run(
        scripts.TOUCH_SESSION,
        client(),
        [keys.session(cookie_hash), keys.no_session(cookie_hash)],
        [idle, int(time.time()), step],
    )
    if found is None:
        return _UNKNOWN
    if not found:
        return _GONE
    return Touched(str(found[0]), bool(found[1]))


def restore(cookie_hash: str, sid: str, copy: str, ttl: int) -> bool:
    """Write a copy read from SQL back; False when the session's end was committed meanwhile."""
    return bool(
        scripts.run(
            scripts.RESTORE_SESSION,
            client(),
            [keys.session(cookie_hash), keys.sid(sid), keys.ended(sid)],
            [copy, ttl, cookie_hash],
        )
    )


def mark_seen(cookie_hash: str, copy: str) -> None:
    """Replace a copy (its last_seen stamp moved), keeping its expiry, only while it exists."""
    client().set(keys.session(cookie_hash), copy, xx=True, keepttl=True)


def remember_miss(cookie_hash: str) -> None:
    """Mark a cookie that matched no live session, for MISS_SECONDS."""
    client().set(keys.no_session(cookie_hash), 1, ex=MISS_SECONDS)


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
    """Remove sessions (sid, cookie hash), after their end is committed in SQL, and mark them
    ended (one round trip)."""
    if not pairs:
        return
    found: list[Any] = []
    pipe = batch(transaction=False)
    for sid, cookie_hash in pairs:
        found += [keys.session(cookie_hash), keys.sid(sid)]
        pipe.set(keys.ended(sid), 1, ex=ENDED_SECONDS)
    pipe.delete(*found)
    pipe.execute()


def touch_for_refresh(sid: str, grant_id: str, idle: int) -> int:
    """Slide a session's expiry for a refresh: 1; 0 when its copy is missing (SQL, which the
    rotation read, decides); -1 when the grant is deny-listed (one round trip)."""
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
