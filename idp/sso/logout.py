"""end_sessions: the one way every session ends — logout, password change, disabling, unlink."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import current_app
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from idp.models import (
    Account,
    Client,
    Delivery,
    Person,
    RefreshToken,
    School,
    SessionClient,
    SsoSession,
    utcnow,
)
from idp.outbox import queue
from idp.outbox.queue import notify_worker
from idp.sso.sessions import forget
from idp.store.grants import deny_grants
from shared import outage
from shared.db import row_locks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scope:
    """Which sessions to end: by id, or all of a person's. With school_id (and person_id), only
    that school's part of the person's sessions: a session that logged in with the person's
    account at that school ends entirely, the others lose that school and go on."""

    session_ids: tuple[str, ...] = ()
    person_id: int | None = None
    school_id: int | None = None


@dataclass(frozen=True)
class Ended:
    """The sessions ended (and those that only lost a school) and the logout messages queued."""

    session_ids: list[str]
    delivery_ids: list[int]
    left_session_ids: list[str] = field(default_factory=list)


def end_sessions(db: Session, scope: Scope, reason: str, deliver: bool = True) -> Ended:
    """End sessions: commit the end, revoked tokens and outbox rows, then clear Redis, then send."""
    query = select(SsoSession).where(SsoSession.ended_at.is_(None))
    if scope.session_ids:
        query = query.where(SsoSession.id.in_(scope.session_ids))
    elif scope.person_id is not None:
        query = query.where(SsoSession.person_id == scope.person_id)
    else:
        return Ended([], [])
    if row_locks(db):
        query = query.order_by(SsoSession.id).with_for_update()
    sessions = db.scalars(query).all()
    if not sessions:
        return Ended([], [])
    whole, part = list(sessions), []
    if scope.school_id is not None and scope.person_id is not None:
        logged_in_there = set(
            db.scalars(
                select(Account.id).where(
                    Account.person_id == scope.person_id, Account.school_id == scope.school_id
                )
            )
        )
        whole = [s for s in sessions if s.account_id in logged_in_there]
        part = [s for s in sessions if s.account_id not in logged_in_there]
    now = utcnow()
    outbox = _end_whole(db, whole, reason, now, deliver)
    denied: list[str] = []
    if part and scope.school_id is not None:
        left, denied = _leave_school(
            db, [s.id for s in part], scope.school_id, reason, now, deliver
        )
        outbox += left
    pairs = [(s.id, s.cookie_hash) for s in whole]
    if outbox:
        notify_worker(db)
    # A rotation that waited for these sessions' rows goes on once this commits (the session
    # still live: only a school left it) with the account as its statement read it before:
    # it checks this mark right after, so the mark is set before the commit. Should the commit
    # fail, the school's grants stay denied: the person signs in there again.
    deny_grants(denied)
    db.commit()
    delivery_ids = [row.id for row in outbox]
    # The end is committed: what follows may fail with Redis or PostgreSQL (a failover) and
    # the person is still logged out. A copy left in Redis opens nothing (SQL has the last
    # word) and goes at its next stamp; rows not sent now are the worker's once their lease
    # runs out.
    try:
        forget(pairs)
    except outage.FAILURES as exc:
        log.warning("after a committed logout, Redis: %s", type(exc).__name__)
    try:
        if deliver:
            queue.deliver_now(delivery_ids)
    except outage.FAILURES as exc:
        log.warning("after a committed logout: %s; the worker sends the rest", type(exc).__name__)
    return Ended([s.id for s in whole], delivery_ids, [s.id for s in part])


def lock_person(db: Session, person_id: int) -> None:
    """Lock a person's row (PostgreSQL) before disabling one of their accounts: a sign-in's
    session insert takes it, then the account, FOR SHARE until its commit (sessions.create), so
    the disable either waits for that sign-in and ends its session, or the insert waits and,
    reading the account disabled, stores nothing."""
    if row_locks(db):
        db.execute(select(Person.id).where(Person.id == person_id).with_for_update())


def lock_sessions(db: Session, person_id: int) -> None:
    """Lock a person's live sessions (PostgreSQL) before a change to their accounts that ends
    or narrows those sessions: a code exchange or a refresh takes its session first and its
    account second, so a merge or an unlink must take them in the same order, or the two
    deadlock."""
    if row_locks(db):
        db.execute(
            select(SsoSession.id)
            .where(SsoSession.person_id == person_id, SsoSession.ended_at.is_(None))
            .order_by(SsoSession.id)
            .with_for_update()
        )


def _end_whole(
    db: Session, sessions: list[SsoSession], reason: str, now: dt.datetime, deliver: bool
) -> list[Delivery]:
    """Mark sessions ended, revoke their refresh tokens, queue a logout for each of their
    schools."""
    if not sessions:
        return []
    ids = [s.id for s in sessions]
    for s in sessions:
        s.ended_at = now
        s.end_reason = reason
    _revoke(db, now, RefreshToken.session_id.in_(ids))
    return _queue(
        db,
        db.scalars(select(SessionClient).where(SessionClient.session_id.in_(ids))),
        reason,
        now,
        deliver,
    )


def _revoke(db: Session, now: dt.datetime, *where: ColumnElement[bool]) -> None:
    """Revoke the live refresh tokens under sessions locked by end_sessions. On PostgreSQL a
    token row locked by a refresh in flight is skipped: that refresh took its token first and
    now waits for the session, so revoking it would make the two wait on each other until
    PostgreSQL aborts one. Once this commits, that refresh is refused (its session has ended)
    or, when a school only leaves the session, its grant is denied like any rotation racing
    the revocation (end_sessions' deny_grants)."""
    live = select(RefreshToken.id).where(*where, RefreshToken.revoked_at.is_(None))
    if row_locks(db):
        live = live.with_for_update(skip_locked=True)
    db.execute(
        update(RefreshToken)
        .where(RefreshToken.id.in_(live.scalar_subquery()))
        .values(revoked_at=now)
    )


def _leave_school(
    db: Session,
    session_ids: list[str],
    school_id: int,
    reason: str,
    now: dt.datetime,
    deliver: bool,
) -> tuple[list[Delivery], list[str]]:
    """Take one school out of live sessions: revoke its clients' refresh tokens there, forget
    that it holds tokens, queue its logouts; return the rows and the grants revoked."""
    clients = select(Client.id).where(Client.school_id == school_id).scalar_subquery()
    under = (RefreshToken.session_id.in_(session_ids), RefreshToken.client_id.in_(clients))
    grants = list(db.scalars(select(RefreshToken.grant_id).where(*under).distinct()))
    _revoke(db, now, *under)
    held = list(
        db.scalars(
            select(SessionClient).where(
                SessionClient.session_id.in_(session_ids), SessionClient.client_id.in_(clients)
            )
        )
    )
    outbox = _queue(db, held, reason, now, deliver)
    for sc in held:
        db.delete(sc)
    return outbox, grants


def _queue(
    db: Session, held: Iterable[SessionClient], reason: str, now: dt.datetime, deliver: bool
) -> list[Delivery]:
    """One outbox row per school client that held tokens: an immutable snapshot."""
    outbox = []
    lease = now + dt.timedelta(seconds=current_app.config["BACKCHANNEL_TIMEOUT_SECONDS"] + 10)
    for sc in held:
        # Leased for the direct attempt, so a worker does not send it at the same time;
        # without one, the worker woken by the NOTIFY sends it at once.
        row = Delivery(
            kind="logout",
            client_id=sc.client_id,
            payload={
                "sid": sc.session_id,
                "sub": sc.sub,
                "reason": reason,
                "client_id": sc.client.client_id,
            },
            lease_until=lease if deliver else None,
        )
        db.add(row)
        outbox.append(row)
    return outbox


def delivery_states(db: Session, delivery_ids: list[int]) -> list[tuple[str, str]]:
    """(school name, state) of each logout message, for the logout page."""
    if not delivery_ids:
        return []

    rows = db.execute(
        select(School.name, Delivery.state)
        .join(Client, Client.id == Delivery.client_id)
        .join(School, School.id == Client.school_id)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(School.name)
    ).all()
    return [(name, state) for name, state in rows]


def frontchannel_frames(db: Session, sid: str, issuer: str) -> list[str]:
    """Front-Channel Logout 1.0 §3: the URIs to frame, with iss and sid, for one session."""

    uris = db.scalars(
        select(Client.frontchannel_logout_uri)
        .join(SessionClient, SessionClient.client_id == Client.id)
        .where(SessionClient.session_id == sid, Client.frontchannel_logout_uri.is_not(None))
    ).all()
    query = urlencode({"iss": issuer, "sid": sid})
    return [f"{u}{'&' if '?' in u else '?'}{query}" for u in uris if u]
