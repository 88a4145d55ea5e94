"""end_sessions: the one way every session ends — logout, password change, disabling, unlink."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from idp import deliveries
from idp.models import Delivery, RefreshToken, SessionClient, SsoSession, utcnow
from idp.sessions import forget

WAKE_CHANNEL = "idp_deliveries"


def notify_worker(db: Session) -> None:
    """Wake the delivery workers once this transaction commits (a NOTIFY is sent on commit)."""
    if db.bind is not None and db.bind.dialect.name == "postgresql":
        db.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})


@dataclass(frozen=True)
class Scope:
    """Which sessions to end: by id, or all of a person's."""

    session_ids: tuple[str, ...] = ()
    person_id: int | None = None


@dataclass(frozen=True)
class Ended:
    """The sessions ended and the logout messages queued for schools."""

    session_ids: list[str]
    delivery_ids: list[int]


def end_sessions(db: Session, scope: Scope, reason: str, deliver: bool = True) -> Ended:
    """End sessions: commit the end, revoked tokens and outbox rows, then clear Redis, then send."""
    query = select(SsoSession).where(SsoSession.ended_at.is_(None))
    if scope.session_ids:
        query = query.where(SsoSession.id.in_(scope.session_ids))
    elif scope.person_id is not None:
        query = query.where(SsoSession.person_id == scope.person_id)
    else:
        return Ended([], [])
    if db.bind is not None and db.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    sessions = db.scalars(query).all()
    if not sessions:
        return Ended([], [])
    now = utcnow()
    ids = [s.id for s in sessions]
    for s in sessions:
        s.ended_at = now
        s.end_reason = reason
    db.execute(update(RefreshToken).where(RefreshToken.session_id.in_(ids),
                                          RefreshToken.revoked_at.is_(None))
               .values(revoked_at=now))
    outbox = []
    lease = now + dt.timedelta(seconds=current_app.config["BACKCHANNEL_TIMEOUT_SECONDS"] + 10)
    for sc in db.scalars(select(SessionClient).where(SessionClient.session_id.in_(ids))):
        # Leased for the direct attempt below, so a worker does not send it at the same time;
        # without one, the worker woken by the NOTIFY sends it at once.
        row = Delivery(kind="logout", client_id=sc.client_id, payload={
            "sid": sc.session_id, "sub": sc.sub, "reason": reason,
            "client_id": sc.client.client_id}, lease_until=lease if deliver else None)
        db.add(row)
        outbox.append(row)
    pairs = [(s.id, s.cookie_hash) for s in sessions]
    if outbox:
        notify_worker(db)
    db.commit()
    forget(pairs)
    delivery_ids = [row.id for row in outbox]
    if deliver:
        deliveries.attempt_now(current_app._get_current_object(),  # type: ignore[attr-defined]
                               delivery_ids)
    return Ended(ids, delivery_ids)


def delivery_states(db: Session, delivery_ids: list[int]) -> list[tuple[str, str]]:
    """(school name, state) of each logout message, for the logout page."""
    if not delivery_ids:
        return []
    from idp.models import Client, School

    rows = db.execute(select(School.name, Delivery.state)
                      .join(Client, Client.id == Delivery.client_id)
                      .join(School, School.id == Client.school_id)
                      .where(Delivery.id.in_(delivery_ids)).order_by(School.name)).all()
    return [(name, state) for name, state in rows]


def frontchannel_frames(db: Session, sid: str, issuer: str) -> list[str]:
    """Front-Channel Logout 1.0 §3: the URIs to frame, with iss and sid, for one session."""
    from urllib.parse import urlencode

    from idp.models import Client

    uris = db.scalars(select(Client.frontchannel_logout_uri)
                      .join(SessionClient, SessionClient.client_id == Client.id)
                      .where(SessionClient.session_id == sid,
                             Client.frontchannel_logout_uri.is_not(None))).all()
    query = urlencode({"iss": issuer, "sid": sid})
    return [f"{u}{'&' if '?' in u else '?'}{query}" for u in uris if u]
