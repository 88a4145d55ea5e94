"""The loop of `idp worker`: end timed-out sessions (schools are told), then send due deliveries
and due mail.

Each round is bounded: at most EXPIRE_BATCH sessions looked at and one claim of due deliveries.
Between rounds the worker waits for a NOTIFY from a committed logout (PostgreSQL) or polls
(SQLite), never longer than WORKER_POLL_SECONDS.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
from flask import Flask
from sqlalchemy import and_, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idp.dispatch import deliveries
from idp.dispatch import mail as mailer
from idp.models import SsoSession, utcnow
from idp.outbox.queue import WAKE_CHANNEL
from idp.sso.logout import Scope, end_sessions
from idp.store import sessions as store_sessions
from shared.db import get_db

log = logging.getLogger(__name__)

EXPIRE_BATCH = 200
# sessions.create commits the SQL record before it writes Redis (and renew stamps last_seen
# before it does): a session this young without its Redis key is being born, not idle.
START_GRACE = dt.timedelta(seconds=2)


@dataclass
class Expiry:
    """Walks the live sessions in id order, a batch per round, wrapping at the end."""

    after: str = ""

    def candidates(self, app: Flask, db: Session) -> tuple[list[str], list[str]]:
        """Return (past the absolute cap, possibly idle) session ids of the next batch."""
        now = utcnow()
        idle = dt.timedelta(seconds=app.config["SESSION_IDLE_SECONDS"])
        # Only a session unseen in SQL for the idle time and a stamp step (last_seen is stamped
        # once a step of use) can have idled out; one whose Redis key is still there is in use.
        # A key lost in a Redis failover does not end a session SQL saw recently.
        step = dt.timedelta(seconds=app.config["SESSION_SEEN_STEP_SECONDS"])
        quiet = max(idle + step, START_GRACE)
        rows = db.execute(
            select(SsoSession.id, SsoSession.expires_at)
            .where(
                SsoSession.ended_at.is_(None),
                SsoSession.id > self.after,
                or_(
                    SsoSession.expires_at <= now,
                    and_(
                        SsoSession.last_seen <= now - quiet,
                        SsoSession.created_at <= now - START_GRACE,
                    ),
                ),
            )
            .order_by(SsoSession.id)
            .limit(EXPIRE_BATCH)
        ).all()
        self.after = rows[-1].id if len(rows) == EXPIRE_BATCH else ""
        capped = [r.id for r in rows if r.expires_at <= now]
        return capped, [r.id for r in rows if r.expires_at > now]

    def run(self, app: Flask) -> list[str]:
        """End the sessions of one batch that passed their absolute cap or idled out."""
        db = get_db()
        capped, maybe_idle = self.candidates(app, db)
        db.rollback()  # end_sessions opens its own transaction (and locks) below
        idle: list[str] = []
        if maybe_idle:
            idle = [
                sid
                for sid, live in zip(maybe_idle, store_sessions.alive(maybe_idle), strict=True)
                if not live
            ]
        if not capped and not idle:
            return []
        ended = end_sessions(db, Scope(session_ids=tuple(capped + idle)), "timeout")
        return ended.session_ids


@dataclass
class Round:
    """What one round of the worker did."""

    ended_sessions: list[str]
    outcomes: list[deliveries.Outcome]
    mails: int = 0


def run_round(app: Flask, expiry: Expiry) -> Round:
    """One bounded round: end expired sessions, then send what is due."""
    with app.app_context():
        ended = expiry.run(app)
        outcomes = deliveries.run_once(app)
        mails = mailer.run_once(app)
    return Round(ended, outcomes, mails)


class Waker:
    """Waits for the next round: a NOTIFY on PostgreSQL, else the poll interval."""

    def __init__(self, app: Flask, stop: threading.Event) -> None:
        self.stop = stop
        self.poll = float(app.config["WORKER_POLL_SECONDS"])
        url = make_url(app.config["DATABASE_URL"])
        self.url = (
            url.set(drivername="postgresql").render_as_string(hide_password=False)
            if url.get_backend_name() == "postgresql"
            else None
        )
        self.conn: Any = None

    def _listen(self, url: str) -> Any:

        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
            self.conn.execute(f"LISTEN {WAKE_CHANNEL}")
        return self.conn

    def wait(self) -> None:
        """Return on a wake-up, after the poll interval, or when asked to stop."""
        if self.url is None:
            self.stop.wait(self.poll)
            return

        try:
            conn = self._listen(self.url)
            deadline = time.monotonic() + self.poll
            # In slices of at most a second: a signal does not interrupt psycopg's wait.
            while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
                if list(conn.notifies(timeout=min(left, 1.0), stop_after=1)):
                    break
            for _ in conn.notifies(timeout=0.0):  # drain: one round serves them all
                pass
        except psycopg.Error as exc:  # the database may be down: poll meanwhile
            log.warning("worker: cannot listen for wake-ups (%s); polling", type(exc).__name__)
            self.close()
            self.stop.wait(self.poll)

    def close(self) -> None:
        """Close the listening connection."""
        if self.conn is not None:
            self.conn.close()  # closing a broken connection does not raise
            self.conn = None


def run(app: Flask, once: bool = False, report: Callable[[Round], None] | None = None) -> None:
    """Run rounds until SIGTERM/SIGINT (or one round with once); a failed round is retried."""
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if not once and threading.current_thread() is threading.main_thread():
        # Finish the round in progress, then exit: a claimed row is never left half sent.
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    expiry = Expiry()
    waker = Waker(app, stop)
    try:
        while not stop.is_set():
            try:
                done = run_round(app, expiry)
            except (SQLAlchemyError, redis.RedisError) as exc:
                # The database or Redis is away: nothing was lost (rows stay pending), so
                # wait and try again.
                log.warning("worker round failed: %s", type(exc).__name__)
                if once:
                    raise
                stop.wait(waker.poll)
                continue
            if report is not None:
                report(done)
            if once:
                return
            if not done.outcomes and not done.ended_sessions and not done.mails:
                waker.wait()
    finally:
        waker.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
