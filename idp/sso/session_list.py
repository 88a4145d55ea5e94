"""A person's live SSO sessions as the sessions page shows them: device, started, last used,
schools."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import Client, School, SessionClient, SsoSession, utcnow
from idp.sso.sessions import idle_floor
from idp.sso.user_agents import device_label
from idp.store import sessions as store_sessions


@dataclass(frozen=True)
class SessionInfo:
    """One live session of the person."""

    sid: str
    device: str | None
    started: dt.datetime
    last_used: dt.datetime
    schools: list[str]
    current: bool


def last_used(row: SsoSession, ttl: int, now: dt.datetime) -> dt.datetime:
    """When the session was last used: the later of its SQL last_seen (written on login and
    refresh) and what Redis's sliding expiry tells (every authorize and page renews it)."""
    idle = current_app.config["SESSION_IDLE_SECONDS"]
    to_cap = (row.expires_at - now).total_seconds()
    # A touch sets the TTL to min(idle, time to the absolute cap): when the TTL runs with the
    # cap, it no longer tells when the touch was, and last_seen is all we know.
    if ttl >= to_cap - 1:
        return row.last_seen
    touched = now - dt.timedelta(seconds=max(0, idle - ttl))
    return min(now, max(row.last_seen, touched))


def live_sessions(db: Session, person_id: int, current_sid: str) -> list[SessionInfo]:
    """The person's sessions that are neither ended nor expired, the current one first."""
    now = utcnow()
    rows = db.scalars(
        select(SsoSession)
        .where(
            SsoSession.person_id == person_id,
            SsoSession.ended_at.is_(None),
            SsoSession.expires_at > now,
        )
        .order_by(SsoSession.created_at.desc())
    ).all()
    if not rows:
        return []
    ttls = store_sessions.remaining([row.id for row in rows])
    floor = idle_floor(now)
    schools: dict[str, list[str]] = defaultdict(list)
    for sid, name in db.execute(
        select(SessionClient.session_id, School.name)
        .join(Client, Client.id == SessionClient.client_id)
        .join(School, School.id == Client.school_id)
        .where(SessionClient.session_id.in_([row.id for row in rows]))
        .order_by(School.name)
    ):
        if name not in schools[sid]:
            schools[sid].append(name)
    found = [
        SessionInfo(
            sid=row.id,
            device=device_label(row.user_agent),
            started=row.created_at,
            last_used=last_used(row, ttl, now),
            schools=schools[row.id],
            current=row.id == current_sid,
        )
        # Without its Redis key (TTL -2) a session is live while SQL saw it within the idle
        # time (a failover lost the key; its next use writes it back); otherwise it idled out
        # and the worker ends it.
        for row, ttl in zip(rows, ttls, strict=True)
        if ttl > 0 or row.last_seen > floor
    ]
    return sorted(found, key=lambda s: not s.current)
