"""IdP single-sign-on sessions: the cookie secret, the Redis hot copy, the SQL record.

Redis is the fast copy, SQL the record of truth. A request reads the copy by the cookie's
hash (one round trip); when Redis has none (lost in a failover, or idled out) the record is
read by the same hash (one indexed statement) and, when it is live, the copy is written back,
so a failover signs nobody out. A session is live in SQL while it has not ended, is within its
absolute cap and was seen within the idle time plus one stamp step: last_seen is stamped at
most once a step (SESSION_SEEN_STEP_SECONDS) as the session is used, so it is never more than
a step behind the Redis slide. A cookie that matches nothing is marked in Redis for a while, so
random cookies cannot turn into SQL load.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app
from sqlalchemy import FromClause, Insert, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from idp.metrics import SESSION_READS
from idp.models import Account, Person, SsoSession, TZDateTime, utcnow
from idp.store import Batch, batch
from idp.store import sessions as store_sessions
from shared.db import own_statement
from shared.security import sha256_hex

# A plain table insert on the connection (the ORM's DML path costs more than the SQL). For a
# password login on PostgreSQL the transaction does not wait for its WAL flush: a session lost in
# a server crash only means signing in again (tokens under it are checked against SQL, and the
# first code exchange's commit, which is synchronous, makes the session durable with it). Never
# for a transaction that also consumes something single-use (a link, an attempt).
#
# The row goes in only while what the sign-in checked still holds: the person is not absorbed
# by a link, the account it signs in with is still theirs and active, and (a password login)
# the person's hash is still the one the password was verified against — a login spends its
# argon2 time between reading the hash and storing its session. The statement takes the person's
# row, then the account's, FOR SHARE (the order a link or a disable takes them) until the commit:
# a password change, a link or a disable holding either row is waited for and then read as it
# committed it; one that comes later waits for this commit and ends the new session.
_SESSIONS = cast(Table, SsoSession.__table__)
_PERSONS = cast(Table, Person.__table__)
_ACCOUNTS = cast(Table, Account.__table__)
_FIELDS = (
    "id",
    "cookie_hash",
    "person_id",
    "account_id",
    "auth_time",
    "amr",
    "acr",
    "user_agent",
    "created_at",
    "last_seen",
    "expires_at",
)


@functools.cache
def _insert_session(with_account: bool, with_hash: bool, relaxed: bool) -> Insert:
    """The conditional insert for one kind of sign-in (statements are built once)."""
    where = [_PERSONS.c.id == bindparam("person_id"), _PERSONS.c.merged_into_id.is_(None)]
    source: FromClause = _PERSONS
    locked = [_PERSONS]
    if with_hash:
        where.append(_PERSONS.c.password_hash == bindparam("password_hash"))
    if with_account:
        source = _PERSONS.join(_ACCOUNTS, _ACCOUNTS.c.person_id == _PERSONS.c.id)
        where += [_ACCOUNTS.c.id == bindparam("account_id"), _ACCOUNTS.c.status == "active"]
        locked.append(_ACCOUNTS)
    values = (
        select(*[bindparam(f, type_=_SESSIONS.c[f].type) for f in _FIELDS])
        .select_from(source)
        .where(*where)
        .with_for_update(read=True, of=locked)
    )
    answer: list[Any] = [_SESSIONS.c.id]
    if relaxed:
        answer.append(func.set_config("synchronous_commit", "off", True))
    return insert(_SESSIONS).from_select(_FIELDS, values).returning(*answer)


class SessionRefused(LookupError):
    """The person was absorbed, or the account disabled or moved, while they signed in."""


@dataclass(frozen=True)
class LiveSession:
    """What a request knows of the browser's SSO session."""

    sid: str
    person_id: int
    auth_time: int
    amr: list[str]
    acr: str
    exp: int

    @classmethod
    def from_json(cls, raw: str) -> LiveSession:
        """Parse the Redis copy."""
        d = json.loads(raw)
        return cls(
            sid=d["sid"],
            person_id=d["person_id"],
            auth_time=d["auth_time"],
            amr=d["amr"],
            acr=d["acr"],
            exp=d["exp"],
        )

    def copy(self, seen: int) -> str:
        """The Redis copy, with when SQL's last_seen was stamped."""
        return json.dumps({**self.__dict__, "seen": seen})


# A Redis miss: the live record with this cookie hash, stamped as seen now (one statement).
_RECORD = (
    update(_SESSIONS)
    .where(
        _SESSIONS.c.cookie_hash == bindparam("hashed"),
        _SESSIONS.c.ended_at.is_(None),
        _SESSIONS.c.expires_at > bindparam("now", type_=TZDateTime()),
        _SESSIONS.c.last_seen > bindparam("floor", type_=TZDateTime()),
    )
    .values(last_seen=bindparam("now", type_=TZDateTime()))
    .returning(
        _SESSIONS.c.id,
        _SESSIONS.c.person_id,
        _SESSIONS.c.auth_time,
        _SESSIONS.c.amr,
        _SESSIONS.c.acr,
        _SESSIONS.c.expires_at,
    )
)
# The stamp: last_seen moves while the session is in use; no row when it has ended.
_STAMP = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("sid"), _SESSIONS.c.ended_at.is_(None))
    .values(last_seen=bindparam("now", type_=TZDateTime()))
    .returning(_SESSIONS.c.id)
)
# Both only move last_seen: on PostgreSQL they commit without waiting for the WAL flush (half
# their round trip; measured 0.14 against 0.28 ms). A stamp lost in a server crash leaves
# last_seen a step older, which the idle floor's step of slack absorbs.
_UNFLUSHED = func.set_config("synchronous_commit", "off", True)
_RECORD_PG = _RECORD.returning(_UNFLUSHED)
_STAMP_PG = _STAMP.returning(_UNFLUSHED)


def idle_floor(now: dt.datetime) -> dt.datetime:
    """A record last seen at or before this is past its idle time (a step of slack: last_seen
    is stamped once a step)."""
    cfg = current_app.config
    return now - dt.timedelta(
        seconds=cfg["SESSION_IDLE_SECONDS"] + cfg["SESSION_SEEN_STEP_SECONDS"]
    )


def load(cookie: str | None) -> LiveSession | None:
    """Return the live session for a cookie secret and slide its expiry: one round trip to
    Redis; on a miss one statement in SQL; once a step the last_seen stamp."""
    if not cookie or len(cookie) > 100:
        return None
    cfg = current_app.config
    hashed = sha256_hex(cookie)
    found = store_sessions.touch(
        hashed, cfg["SESSION_IDLE_SECONDS"], cfg["SESSION_SEEN_STEP_SECONDS"]
    )
    if found.gone:
        return None
    if found.copy is None:
        return _from_record(hashed)
    live = LiveSession.from_json(found.copy)
    if found.stamp_due and not _stamp(hashed, live):
        return None
    return live


def _stamp(cookie_hash: str, live: LiveSession) -> bool:
    """Move last_seen to now; False (and the copy removed) when SQL says the session ended:
    its copy outlived the end (a Redis failover lost the removal)."""
    now = utcnow()
    with own_statement() as conn:
        statement = _STAMP_PG if conn.dialect.name == "postgresql" else _STAMP
        stamped = conn.execute(statement, {"sid": live.sid, "now": now}).first()
    if stamped is None:
        store_sessions.forget([(live.sid, cookie_hash)])
        SESSION_READS.labels("ended_copy").inc()
        return False
    store_sessions.mark_seen(cookie_hash, live.copy(int(now.timestamp())))
    return True


def _from_record(cookie_hash: str) -> LiveSession | None:
    """A Redis miss: read the live record by the cookie hash and write its copy back, or mark
    the cookie as matching nothing."""
    now = utcnow()
    with own_statement() as conn:
        row = conn.execute(
            _RECORD_PG if conn.dialect.name == "postgresql" else _RECORD,
            {"hashed": cookie_hash, "now": now, "floor": idle_floor(now)},
        ).first()
    if row is None:
        store_sessions.remember_miss(cookie_hash)
        SESSION_READS.labels("no_session").inc()
        return None
    expires_at = _aware(row.expires_at)
    stamp = int(now.timestamp())
    live = LiveSession(
        sid=row.id,
        person_id=row.person_id,
        auth_time=int(_aware(row.auth_time).timestamp()),
        amr=list(row.amr),
        acr=row.acr,
        exp=int(expires_at.timestamp()),
    )
    ttl = max(1, min(current_app.config["SESSION_IDLE_SECONDS"], live.exp - stamp))
    if not store_sessions.restore(cookie_hash, live.sid, live.copy(stamp), ttl):
        SESSION_READS.labels("ended_copy").inc()
        return None  # ended while it was read
    SESSION_READS.labels("restored").inc()
    return live


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite gives timestamps back naive; they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def create(
    db: Session,
    person_id: int,
    account_id: int | None,
    amr: list[str],
    acr: str,
    user_agent: str | None,
    pipe: Batch | None = None,
    relaxed: bool = False,
    password_hash: str | None = None,
) -> tuple[str, LiveSession]:
    """Start a session: commit its SQL record, then publish it in Redis; return the cookie.
    When pipe is given the Redis writes are queued on it and the caller executes it. relaxed:
    the transaction holds nothing else that must survive a crash (a password login, see
    the note above _insert_session). password_hash: the hash a password login was verified against.
    SessionRefused when the person, the account or the hash changed while they signed in
    (nothing is stored)."""
    secret = secrets.token_urlsafe(32)
    hashed = sha256_hex(secret)
    sid = secrets.token_urlsafe(18)
    now = utcnow()
    max_age = current_app.config["SESSION_MAX_SECONDS"]
    idle = current_app.config["SESSION_IDLE_SECONDS"]
    conn = db.connection()
    relax = relaxed and conn.dialect.name == "postgresql"
    statement = _insert_session(account_id is not None, password_hash is not None, relax)
    inserted = conn.execute(
        statement,
        {
            "id": sid,
            "cookie_hash": hashed,
            "person_id": person_id,
            "account_id": account_id,
            "auth_time": now,
            "amr": amr,
            "acr": acr,
            "user_agent": (user_agent or "")[:300],
            "created_at": now,
            "last_seen": now,
            "expires_at": now + dt.timedelta(seconds=max_age),
            "password_hash": password_hash,
        },
    )
    if inserted.first() is None:
        raise SessionRefused(person_id)
    db.commit()
    stamp = int(now.timestamp())
    live = LiveSession(
        sid=sid, person_id=person_id, auth_time=stamp, amr=amr, acr=acr, exp=stamp + max_age
    )
    ttl = min(idle, max_age)
    own = pipe is None
    pipe = batch() if pipe is None else pipe
    store_sessions.publish(pipe, hashed, sid, live.copy(stamp), ttl)
    if own:
        pipe.execute()
    return secret, live


def forget(pairs: list[tuple[str, str]]) -> None:
    """Remove sessions (sid, cookie hash) from Redis, after their end is committed in SQL."""
    store_sessions.forget(pairs)


def renew(
    db: Session, live: LiveSession, amr: list[str], acr: str, reauthenticated: bool = True
) -> tuple[str, LiveSession]:
    """Re-authenticate the same person: a new cookie secret and auth_time, same sid
    (LookupError when SQL says the session has ended). Without reauthenticated only the cookie
    secret changes (after a password change, say)."""
    row = db.get(SsoSession, live.sid)
    if row is None or row.ended_at is not None:  # a Redis copy revived after the end
        raise LookupError("session record missing or ended")
    old_hash = row.cookie_hash
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    row.cookie_hash = sha256_hex(secret)
    if reauthenticated:
        row.auth_time = now
    row.amr = amr
    row.acr = acr
    row.last_seen = now
    db.commit()
    renewed = LiveSession(
        sid=live.sid,
        person_id=live.person_id,
        auth_time=int(now.timestamp()) if reauthenticated else live.auth_time,
        amr=amr,
        acr=acr,
        exp=live.exp,
    )
    ttl = max(1, min(current_app.config["SESSION_IDLE_SECONDS"], live.exp - int(time.time())))
    copy = renewed.copy(int(now.timestamp()))
    store_sessions.replace(old_hash, row.cookie_hash, live.sid, copy, ttl)
    return secret, renewed
