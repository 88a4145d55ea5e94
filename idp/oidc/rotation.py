"""Refresh-token rotation in one round trip (RFC 6749 §6, RFC 9700 §4.14.2).

Claiming the presented token (only for a scope it covers), checking the session is live (not
ended, within its cap, seen within the idle time; its last_seen slid), loading the account with
its person, and storing the next token (only for an active account of the session's person) are
one statement, committed at once: on PostgreSQL one autocommit statement with data-modifying
CTEs, on SQLite a short transaction committed before anything else happens.

The rule for a refusal after the claim (docs/ARCHITECTURE.md, Codes, tokens and refresh):
- A refusal the facts decide (an ended or idle session, an inactive account, another person, a
  revoked grant) leaves the presented token consumed; no successor was stored (the grant's
  revocation takes one the deny mark refuses), and the family is dead anyway.
- A wider scope is refused before the claim (the statement claims only a covering scope), so
  the token stays usable.
- A failure after the claim (Redis or PostgreSQL unavailable, any error that is not an OAuth
  refusal) undoes it with one statement (`unclaim`): the successor deleted, the presented token
  unclaimed if it is still as this request left it, so the school may retry. A replay between the
  claim and the undo is a reuse, as it would be after a success.

The rotation commits without waiting for its WAL flush (synchronous_commit off for this
statement only; PostgreSQL stays consistent, and any later synchronous commit — a logout, a
revocation — flushes it too). A server crash may forget the rotations of its last moments: their
clients' next refresh fails and their school sessions end (the safety net), and the tokens they
replaced, which only those school servers ever held, are as they were before. The commit's flush
was most of a refresh's time on this hardware; nothing that revokes or ends is relaxed. (Reading
the session FOR SHARE and stamping last_seen once a step instead was measured and dropped: over
HTTP it cost the same PostgreSQL CPU per refresh.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from psycopg.pq import TransactionStatus
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from idp.models import Account, Person, RefreshToken, SsoSession, TZDateTime
from idp.oidc.claims import AccountRow, PersonRow
from shared.db import hot_connection, psycopg_sql

_REFRESH = cast(Table, RefreshToken.__table__)
_SSO = cast(Table, SsoSession.__table__)
_ACCOUNT = cast(Table, Account.__table__)
_PERSON = cast(Table, Person.__table__)


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """What the presented refresh token was issued with."""

    grant_id: str
    session_id: str
    account_id: int
    scope: str
    claims: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    """The columns of an SSO session that issuing tokens uses."""

    id: str
    person_id: int
    auth_time: dt.datetime
    acr: str
    amr: list[str]
    expires_at: dt.datetime
    ended_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Rotation:
    """A claimed token; session is None when it has ended, account None when it is gone."""

    claimed: ClaimedRow
    session: SessionRow | None
    account: AccountRow | None


_PERSON_NAMES = (
    "given_name",
    "family_name",
    "birth_date",
    "locale",
    "updated_at",
    "email",
    "email_verified",
    "phone",
    "address",
)
_N_CLAIM, _N_SESSION, _N_ACCOUNT = 5, 6, 6
_N_PERSON = len(_PERSON_NAMES)

# One autocommit statement: claim (for a covering scope), live session (last_seen slid), next
# token (for an active account of the session's person), account and person; run by psycopg on
# the request's hot connection (shared.db).
_ROTATE_PG = psycopg_sql("""
WITH claimed AS (
  UPDATE refresh_token SET used_at = :now
  WHERE token_hash = :hashed AND client_id = :client_pk AND used_at IS NULL
    AND revoked_at IS NULL AND expires_at > :now
    AND (CAST(:asked AS text[]) IS NULL
         OR CAST(:asked AS text[]) <@ string_to_array(scope, ' '))
  RETURNING grant_id, session_id, account_id, scope, claims
), live AS (
  UPDATE sso_session SET last_seen = :now FROM claimed
  WHERE sso_session.id = claimed.session_id AND sso_session.ended_at IS NULL
    AND sso_session.expires_at > :now AND sso_session.last_seen > :floor
  RETURNING sso_session.id, sso_session.person_id, sso_session.auth_time, sso_session.acr,
            sso_session.amr, sso_session.expires_at
), minted AS (
  INSERT INTO refresh_token (token_hash, grant_id, client_id, session_id, account_id, scope,
                             claims, created_at, expires_at)
  SELECT :new_hash, claimed.grant_id, :client_pk, claimed.session_id, claimed.account_id,
         claimed.scope, claimed.claims, :now, live.expires_at
  FROM claimed JOIN live ON live.id = claimed.session_id
  JOIN account holder ON holder.id = claimed.account_id AND holder.status = 'active'
    AND holder.person_id = live.person_id
)
SELECT claimed.*, live.*, a.id, a.person_id, a.school_id, a.sub, a.roles, a.status,
       p.given_name, p.family_name, p.birth_date, p.locale, p.updated_at, p.email,
       p.email_verified, p.phone, p.address,
       set_config('synchronous_commit', 'off', true)
FROM claimed LEFT JOIN live ON true
LEFT JOIN account a ON a.id = claimed.account_id
LEFT JOIN person p ON p.id = a.person_id
""")

# The undo of a claim whose request then failed: the successor (never handed out) deleted, the
# presented token unclaimed if this request's claim is still what it holds.
_UNCLAIM_PG = psycopg_sql("""
WITH gone AS (DELETE FROM refresh_token WHERE token_hash = :new_hash)
UPDATE refresh_token SET used_at = NULL
WHERE token_hash = :hashed AND used_at = :now AND revoked_at IS NULL
""")

# SQLite has no data-modifying CTEs: the same steps, one statement each, one transaction.
_CLAIM = (
    update(_REFRESH)
    .where(
        _REFRESH.c.token_hash == bindparam("hashed"),
        _REFRESH.c.client_id == bindparam("client_pk"),
        _REFRESH.c.used_at.is_(None),
        _REFRESH.c.revoked_at.is_(None),
        _REFRESH.c.expires_at > bindparam("now", type_=TZDateTime()),
    )
    .values(used_at=bindparam("now", type_=TZDateTime()))
    .returning(
        _REFRESH.c.grant_id,
        _REFRESH.c.session_id,
        _REFRESH.c.account_id,
        _REFRESH.c.scope,
        _REFRESH.c.claims,
    )
)
_SLIDE = (
    update(_SSO)
    .where(
        _SSO.c.id == bindparam("sid"),
        _SSO.c.ended_at.is_(None),
        _SSO.c.expires_at > bindparam("now", type_=TZDateTime()),
        _SSO.c.last_seen > bindparam("floor", type_=TZDateTime()),
    )
    .values(last_seen=bindparam("now", type_=TZDateTime()))
    .returning(
        _SSO.c.id, _SSO.c.person_id, _SSO.c.auth_time, _SSO.c.acr, _SSO.c.amr, _SSO.c.expires_at
    )
)
_ACCOUNT_PERSON = (
    select(
        _ACCOUNT.c.id,
        _ACCOUNT.c.person_id,
        _ACCOUNT.c.school_id,
        _ACCOUNT.c.sub,
        _ACCOUNT.c.roles,
        _ACCOUNT.c.status,
        *(_PERSON.c[c] for c in _PERSON_NAMES),
    )
    .select_from(_ACCOUNT)
    .outerjoin(_PERSON, _PERSON.c.id == _ACCOUNT.c.person_id)
    .where(_ACCOUNT.c.id == bindparam("account_id"))
)
_INSERT = insert(_REFRESH)
_NARROW_PG = "UPDATE refresh_token SET scope = %(scope)s WHERE token_hash = %(new_hash)s"


def as_utc(value: Any) -> Any:
    """A timestamp as aware UTC (SQLite gives them back naive; they are UTC)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _rows(claimed: Any, session: Any, account: Any) -> Rotation:
    claim = ClaimedRow(*claimed)
    live = SessionRow(*(as_utc(v) for v in session)) if session and session[0] else None
    acct = None
    if account and account[0] is not None:
        person = PersonRow(*(as_utc(v) for v in account[_N_ACCOUNT:]))
        pk, person_id, school_id, sub, roles, status = account[:_N_ACCOUNT]
        acct = AccountRow(pk, person_id, school_id, sub, roles, status, person)
    return Rotation(claim, live, acct)


def rotate(
    db: Callable[[], Session],
    client_pk: int,
    hashed: str,
    new_hash: str,
    now: dt.datetime,
    idle_floor: Callable[[dt.datetime], dt.datetime],
    asked: list[str] | None = None,
) -> Rotation | None:
    """Claim the token with this hash for this client and store its successor, committed at
    once (db: the request's session, asked for only where the hot connection does not serve);
    None when the token is unknown, used, revoked, expired, another client's or granted less
    than asked. The session is live when it has not ended, is within its cap and was seen
    after idle_floor(now); a successor is stored only for a live session and an active account
    of its person."""
    floor = idle_floor(now)
    params = {
        "hashed": hashed,
        "new_hash": new_hash,
        "client_pk": client_pk,
        "now": now,
        "floor": floor,
        "asked": asked,
    }
    hot = hot_connection()
    if hot is not None:
        row = hot.execute(_ROTATE_PG, params).fetchone()
        if row is None:
            return None
        end = _N_CLAIM + _N_SESSION
        return _rows(row[:_N_CLAIM], row[_N_CLAIM:end], row[end : end + _N_ACCOUNT + _N_PERSON])
    unit = db()
    conn = unit.connection()
    claimed = conn.execute(_CLAIM, params).first()
    if claimed is None:
        return None
    if asked is not None and not set(asked) <= set(claimed.scope.split()):
        unit.rollback()
        return None
    session = conn.execute(_SLIDE, {"sid": claimed.session_id, "now": now, "floor": floor}).first()
    account = conn.execute(_ACCOUNT_PERSON, {"account_id": claimed.account_id}).first()
    if (
        session is not None
        and account is not None
        and account.status == "active"
        and account.person_id == session.person_id
    ):
        conn.execute(
            _INSERT,
            {
                "token_hash": new_hash,
                "grant_id": claimed.grant_id,
                "client_id": client_pk,
                "session_id": claimed.session_id,
                "account_id": claimed.account_id,
                "scope": claimed.scope,
                "claims": claimed.claims,
                "created_at": now,
                "expires_at": as_utc(session.expires_at),
            },
        )
    rotation = _rows(claimed, session, account)
    unit.commit()
    return rotation


def unclaim(db: Callable[[], Session], hashed: str, new_hash: str, now: dt.datetime) -> None:
    """Undo a claim whose request failed after it: delete the successor and unclaim the
    presented token if this request's claim is still what it holds; committed at once."""
    hot = hot_connection()
    if hot is not None:
        if hot.info.transaction_status != TransactionStatus.IDLE:
            hot.rollback()
        hot.execute(_UNCLAIM_PG, {"hashed": hashed, "new_hash": new_hash, "now": now})
        return
    session = db()
    session.rollback()
    session.execute(delete(_REFRESH).where(_REFRESH.c.token_hash == new_hash))
    session.execute(
        update(_REFRESH)
        .where(
            _REFRESH.c.token_hash == hashed,
            _REFRESH.c.used_at == now,
            _REFRESH.c.revoked_at.is_(None),
        )
        .values(used_at=None)
    )
    session.commit()


def narrow(db: Callable[[], Session], new_hash: str, scope: str) -> None:
    """Store a narrowed scope on the successor token (a refresh asked for less) before it is
    handed out."""
    hot = hot_connection()
    if hot is not None:
        hot.execute(_NARROW_PG, {"scope": scope, "new_hash": new_hash})
        return
    db().connection().execute(
        update(_REFRESH).where(_REFRESH.c.token_hash == new_hash).values(scope=scope)
    )
