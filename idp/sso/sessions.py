"""IdP single-sign-on sessions: the cookie secret, the Redis hot copy, the SQL record."""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app
from sqlalchemy import FromClause, Insert, Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from idp.models import Account, Person, SsoSession, utcnow
from idp.store import Batch, batch
from idp.store import sessions as store_sessions
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


def load(cookie: str | None) -> LiveSession | None:
    """Return the live session for a cookie secret and slide its expiry (one round trip)."""
    if not cookie or len(cookie) > 100:
        return None
    idle = current_app.config["SESSION_IDLE_SECONDS"]
    raw = store_sessions.touch(sha256_hex(cookie), idle)
    return LiveSession.from_json(raw) if raw else None


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
    store_sessions.publish(pipe, hashed, sid, json.dumps(live.__dict__), ttl)
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
    store_sessions.replace(old_hash, row.cookie_hash, live.sid, json.dumps(renewed.__dict__), ttl)
    return secret, renewed
