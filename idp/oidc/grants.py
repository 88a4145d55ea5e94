"""Token endpoint grants on Authlib: authorization code (PKCE S256 always) and refresh rotation.

RFC 6749 §4.1.3 and §6, RFC 7636 §4.6, OIDC Core §3.1.3 and §12. Each grant answers within one
SQL transaction and one Redis round trip; only reuse revocation commits on an error path.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any, NoReturn, cast

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
)
from flask import current_app
from psycopg.types.json import Json
from sqlalchemy import (
    Table,
    bindparam,
    insert,
    select,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from idp.models import (
    Account,
    Person,
    RefreshToken,
    SessionClient,
    SsoSession,
    utcnow,
)
from idp.oidc import tokens
from idp.oidc.claims import (
    AccountRow,
    PersonRow,
    other_schools_json_sql,
    released,
    stuudium_claims,
)
from idp.oidc.clients import RelyingParty
from idp.oidc.revocation import revoke_grant
from idp.oidc.rotation import Rotation, SessionRow, as_utc, narrow, rotate, unclaim
from idp.sso.sessions import idle_floor
from idp.store import codes
from idp.store import sessions as store_sessions
from shared.db import get_db, hot_connection, psycopg_sql
from shared.messages import STUUDIUM_SCOPE
from shared.security import sha256_hex

VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

log = logging.getLogger(__name__)


def s256(verifier: str) -> str:
    """Return the S256 code challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _single(form: Any, name: str, required: bool = True) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise InvalidRequestError(f"'{name}' is repeated")
    value = values[0] if values and values[0] else None  # empty = omitted (RFC 6749 §3.1)
    if required and value is None:
        raise InvalidRequestError(f"'{name}' is missing")
    return value


_SSO = cast(Table, SsoSession.__table__)
_ACCOUNT = cast(Table, Account.__table__)
_PERSON = cast(Table, Person.__table__)
_SESSION_COLS = (
    _SSO.c.id,
    _SSO.c.person_id,
    _SSO.c.auth_time,
    _SSO.c.acr,
    _SSO.c.amr,
    _SSO.c.expires_at,
    _SSO.c.ended_at,
)
_ACCOUNT_COLS = (
    _ACCOUNT.c.id,
    _ACCOUNT.c.person_id,
    _ACCOUNT.c.school_id,
    _ACCOUNT.c.sub,
    _ACCOUNT.c.roles,
    _ACCOUNT.c.status,
)
_PERSON_COLS = (
    _PERSON.c.given_name,
    _PERSON.c.family_name,
    _PERSON.c.birth_date,
    _PERSON.c.locale,
    _PERSON.c.updated_at,
    _PERSON.c.email,
    _PERSON.c.email_verified,
    _PERSON.c.phone,
    _PERSON.c.address,
)
_N_SESSION, _N_ACCOUNT = len(_SESSION_COLS), len(_ACCOUNT_COLS)

# The session and the account (with its person's claim columns only when a claim needs them),
# in one round trip; plain Core selects built once, run on the session's connection.
_SESSION_AND_ACCOUNT = (
    select(*_SESSION_COLS, *_ACCOUNT_COLS)
    .select_from(_SSO)
    .outerjoin(_ACCOUNT, _ACCOUNT.c.id == bindparam("account_id"))
    .where(_SSO.c.id == bindparam("sid"))
)
_SESSION_ACCOUNT_PERSON = (
    select(*_SESSION_COLS, *_ACCOUNT_COLS, *_PERSON_COLS)
    .select_from(_SSO)
    .outerjoin(_ACCOUNT, _ACCOUNT.c.id == bindparam("account_id"))
    .outerjoin(_PERSON, _PERSON.c.id == _ACCOUNT.c.person_id)
    .where(_SSO.c.id == bindparam("sid"))
)


def _needs_person(scope: str, claims_request: dict[str, Any] | None) -> bool:
    """Tell whether the ID token releases any of the person's data (beyond sub)."""
    if STUUDIUM_SCOPE in scope.split():
        return True
    requested = (claims_request or {}).get("id_token") or {}
    return any(name != "sub" for name in requested)


# PostgreSQL: the same read and the recording of the client (for single logout) in one
# statement, which runs on its own (autocommit on the request's hot connection, shared.db: one
# round trip, no BEGIN or COMMIT of its own) and so records the client, and stores the refresh
# token, only when every check after it will pass: a live session, an active account of the
# session's person. A refused exchange writes nothing. Unlike a refresh rotation, the exchange's
# commit waits for its WAL flush: the recorded client is what a logout tells, so a crash must
# not forget a school that holds tokens (the fault tests' restart test fails on a relaxed
# commit), and the flush makes the password login's session durable too; the tokens are signed
# after that commit.
# The session row is read FOR KEY SHARE (the lock a new recording's foreign key takes anyway):
# an exchange that meets a logout under way waits for it, then reads the ended session and is
# refused; a logout that meets an exchange waits for it, then tells its school too. An exchange
# that stored nothing (its school already recorded, no refresh token) wrote only that lock, so
# its commit does not wait for the flush: a lock means nothing after a crash. The account row
# is locked too, after the session (the order in which an unlink or a link takes them): an
# exchange that waited for an unlink then reads the account as the unlink left it (another
# person's, so no tokens) instead of as it was when its statement began.
_LIVE_AND_RECORD_SQL = """
WITH live AS (
  SELECT s.id, s.person_id, s.auth_time, s.acr, s.amr, s.expires_at, s.ended_at,
         a.id AS account_pk, a.person_id AS account_person_id, a.school_id, a.sub, a.roles,
         a.status, p.given_name, p.family_name, p.birth_date, p.locale, p.updated_at, p.email,
         p.email_verified, p.phone, p.address
  FROM sso_session s JOIN account a ON a.id = :account_id
  LEFT JOIN person p ON p.id = a.person_id
  WHERE s.id = :sid
  FOR KEY SHARE OF s, a
), issuable AS (
  SELECT * FROM live WHERE ended_at IS NULL AND expires_at > :now AND status = 'active'
    AND account_person_id = person_id
), recorded AS (
  INSERT INTO session_client (session_id, client_id, sub, first_at)
  SELECT id, :client_pk, sub, :now FROM issuable
  ON CONFLICT DO NOTHING
  RETURNING 1
){minted}
SELECT live.*{schools}, set_config('synchronous_commit',
  CASE WHEN EXISTS (SELECT 1 FROM recorded){stored} THEN current_setting('synchronous_commit')
       ELSE 'off' END, true)
FROM live
"""
# offline_access: the refresh token is stored by the same statement, under the same conditions.
_MINTED = """, minted AS (
  INSERT INTO refresh_token (token_hash, grant_id, client_id, session_id, account_id, scope,
                             claims, created_at, expires_at)
  SELECT :refresh_hash, :grant_id, :client_pk, id, account_pk, :scope, :claims, :now, expires_at
  FROM issuable
  RETURNING 1
)"""
# The stuudium scope's other schools (claims.other_schools_json_sql) ride along as one JSON
# column.
_WITH_SCHOOLS = (
    f", ({other_schools_json_sql('live.account_person_id', 'live.school_id')}) AS other_schools"
)


def _live_sql(with_schools: bool, minting: bool) -> str:
    """The PostgreSQL statement as psycopg runs it on the hot connection (shared.db)."""
    return psycopg_sql(
        _LIVE_AND_RECORD_SQL.format(
            schools=_WITH_SCHOOLS if with_schools else "",
            minted=_MINTED if minting else "",
            stored=" OR EXISTS (SELECT 1 FROM minted)" if minting else "",
        )
    )


_LIVE_AND_RECORD_PG = {
    (schools, minting): _live_sql(schools, minting)
    for schools in (False, True)
    for minting in (False, True)
}


@dataclass(frozen=True)
class Mint:
    """A refresh token for the code exchange's statement to store (PostgreSQL)."""

    token: str
    grant_id: str
    scope: str
    claims: dict[str, Any] | None


def _live_session(
    sid: str,
    account_id: int,
    with_person: bool,
    client_pk: int,
    with_schools: bool = False,
    mint: Mint | None = None,
) -> tuple[SessionRow, AccountRow | None, list[Any] | None, str | None]:
    """Load the session, which must be live, and the account (with its person when asked), and
    record the client in the session, in one round trip on PostgreSQL; the caller checks the
    account with _active() (so the checks keep their order). Also returned: the person's
    other schools when asked for, and mint's token once stored (PostgreSQL; None: the caller
    reads or stores them itself)."""
    params: dict[str, Any] = {"sid": sid, "account_id": account_id}
    hot = hot_connection()
    postgres = hot is not None
    schools = None
    row: Any
    if hot is not None:
        if mint is not None:
            params.update(
                refresh_hash=sha256_hex(mint.token),
                grant_id=mint.grant_id,
                scope=mint.scope,
                claims=None if mint.claims is None else Json(mint.claims),
            )
        params.update(client_pk=client_pk, now=utcnow())
        row = hot.execute(_LIVE_AND_RECORD_PG[with_schools, mint is not None], params).fetchone()
        row = row[:-1] if row is not None else None  # set_config's answer
        if row is not None and with_schools:
            schools = list(row[-1] or [])
            row = row[:-1]
    else:
        stmt = _SESSION_ACCOUNT_PERSON if with_person else _SESSION_AND_ACCOUNT
        row = get_db().connection().execute(stmt, params).first()
    if row is None:
        raise InvalidGrantError("The session has ended.")
    session = SessionRow(*row[:_N_SESSION])
    if session.ended_at is not None or session.expires_at <= utcnow():
        raise InvalidGrantError("The session has ended.")
    end = _N_SESSION + _N_ACCOUNT
    account_pk, person_id, school_id, sub, roles, status = row[_N_SESSION:end]
    minted = mint.token if postgres and mint is not None else None
    if account_pk is None:
        return session, None, schools, minted
    if not postgres:
        _record_client(get_db(), sid, client_pk, sub)
    person = PersonRow(*row[end:]) if with_person else None
    return (
        session,
        AccountRow(account_pk, person_id, school_id, sub, roles, status, person),
        schools,
        minted,
    )


# The hot path's writes are plain table statements built once: the ORM's unit of work and
# its DML plugin cost more CPU than the SQL itself (same SQL, same transaction).
_REFRESH = cast(Table, RefreshToken.__table__)
_INSERT_REFRESH = insert(_REFRESH)

_RECORD_CLIENT = sqlite.insert(cast(Table, SessionClient.__table__)).on_conflict_do_nothing()


def _record_client(db: Session, sid: str, client_pk: int, sub: str) -> None:
    """Remember that this client holds tokens under the session (SQLite; PostgreSQL records it
    in _live_session's statement)."""
    db.connection().execute(
        _RECORD_CLIENT,
        {"session_id": sid, "client_id": client_pk, "sub": sub, "first_at": utcnow()},
    )


def issue_tokens(
    client: RelyingParty,
    account: AccountRow,
    session: SessionRow,
    *,
    scope: str,
    grant_id: str,
    nonce: str | None,
    claims_request: dict[str, Any] | None,
    refresh: str | None = None,
    other_schools: list[Any] | None = None,
) -> dict[str, Any]:
    """Mint the access token, the ID token and (for offline_access) a refresh token; refresh,
    when given, is a token already stored (a rotation's successor, or the code exchange's on
    PostgreSQL); other_schools, the stuudium scope's schools when already read."""
    cfg = current_app.config
    ring = current_app.extensions["keys"].ring(get_db)
    auth_time = int(session.auth_time.timestamp())
    access, _ = tokens.access_token(
        ring,
        cfg["ISSUER"],
        cfg["ACCESS_TOKEN_TTL_SECONDS"],
        sub=account.sub,
        client_id=client.client_id,
        scope=scope,
        sid=session.id,
        grant_id=grant_id,
        auth_time=auth_time,
        acr=session.acr,
        amr=list(session.amr),
    )
    extra: dict[str, Any] = {}
    if account.person is not None:  # loaded whenever _needs_person() says a claim needs it
        extra = released(account.person, account, "", (claims_request or {}).get("id_token"))
        extra.pop("sub", None)
    if STUUDIUM_SCOPE in scope.split():
        extra.update(stuudium_claims(get_db, account, cfg["ISSUER"], other_schools))
    alg = client.row.id_token_signed_response_alg
    id_token = tokens.id_token(
        ring,
        cfg["ISSUER"],
        cfg["ID_TOKEN_TTL_SECONDS"],
        alg,
        sub=account.sub,
        client_id=client.client_id,
        sid=session.id,
        auth_time=auth_time,
        acr=session.acr,
        amr=list(session.amr),
        nonce=nonce,
        access=access,
        extra=extra,
    )
    response: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": cfg["ACCESS_TOKEN_TTL_SECONDS"],
        "id_token": id_token,
        "scope": scope,
    }
    if refresh is None and "offline_access" in scope.split():
        refresh = secrets.token_urlsafe(32)
        get_db().connection().execute(
            _INSERT_REFRESH,
            {
                "token_hash": sha256_hex(refresh),
                "grant_id": grant_id,
                "client_id": client.row.id,
                "session_id": session.id,
                "account_id": account.id,
                "scope": scope,
                "claims": claims_request,
                "created_at": utcnow(),
                "expires_at": session.expires_at,
            },
        )
    if refresh is not None:
        response["refresh_token"] = refresh
    return response


def _active(account: AccountRow | None) -> AccountRow:
    if account is None or account.status != "active":
        raise InvalidGrantError("The account is not active.")
    return account


def redeem_code(client: RelyingParty, form: Any) -> dict[str, Any]:
    """RFC 6749 §4.1.3 for an authenticated client: redeem the code exactly once (PKCE S256,
    the exact redirect_uri), then issue tokens if the session is still live, recording the
    client in it. Raises the OAuth error to answer."""
    code = _single(form, "code")
    redirect_uri = _single(form, "redirect_uri")
    verifier = _single(form, "code_verifier")
    assert code is not None and verifier is not None
    consumed = codes.consume(code, client.client_id)
    if consumed.replayed_grant:
        revoke_grant(consumed.replayed_grant)
        raise InvalidGrantError("The code was already used; its tokens are revoked.")
    payload = consumed.payload
    if payload is None:
        raise InvalidGrantError("The code is invalid or expired.")
    if redirect_uri != payload["redirect_uri"]:
        raise InvalidGrantError("'redirect_uri' differs from the authorization request.")
    if not VERIFIER_RE.match(verifier) or not hmac.compare_digest(
        s256(verifier), payload["code_challenge"]
    ):
        raise InvalidGrantError("'code_verifier' does not match the code challenge.")
    scope = payload["scope"]
    mint = None
    if "offline_access" in scope.split():
        mint = Mint(secrets.token_urlsafe(32), payload["grant_id"], scope, payload.get("claims"))
    session, loaded, schools, minted = _live_session(
        payload["sid"],
        payload["account_id"],
        _needs_person(scope, payload.get("claims")),
        client.row.id,
        with_schools=STUUDIUM_SCOPE in scope.split(),
        mint=mint,
    )
    account = _active(loaded)
    if account.person_id != session.person_id:
        raise InvalidGrantError("The session belongs to another person.")
    return issue_tokens(
        client,
        account,
        session,
        scope=payload["scope"],
        grant_id=payload["grant_id"],
        nonce=payload.get("nonce"),
        claims_request=payload.get("claims"),
        refresh=minted,
        other_schools=schools,
    )


def rotate_refresh(client: RelyingParty, form: Any) -> dict[str, Any]:
    """RFC 6749 §6 for an authenticated client: claim the refresh token and store its
    successor in one committed step, then issue new tokens, sliding the session's expiry. A
    reused token revokes its whole family; a refusal after the claim leaves the token consumed,
    a failure after it undoes the claim (idp/oidc/rotation.py)."""
    token = _single(form, "refresh_token")
    scope = _single(form, "scope", required=False)
    assert token is not None
    asked = None
    if scope is not None:
        asked = sorted(set(scope.split()))
    hashed = sha256_hex(token)
    now = utcnow()
    if asked is not None and "openid" not in asked:
        _refuse_unclaimed(client, hashed, asked, now)  # the token checked first, as Authlib does
    successor = secrets.token_urlsafe(32)
    new_hash = sha256_hex(successor)
    rotated = rotate(get_db, client.row.id, hashed, new_hash, now, idle_floor, asked)
    if rotated is None:
        _refuse_unclaimed(client, hashed, asked, now)
    try:
        return _issue_rotated(client, rotated, asked, successor, new_hash)
    except OAuth2Error:
        raise  # a refusal the facts decide: the token stays consumed
    except BaseException:
        try:
            unclaim(get_db, hashed, new_hash, now)
        except Exception:  # the database is what failed; the school's next refresh tells
            log.warning("refresh_unclaim_failed", exc_info=True)
        raise


def _refuse_unclaimed(
    client: RelyingParty, hashed: str, asked: list[str] | None, now: dt.datetime
) -> NoReturn:
    """Refuse a refresh that claimed nothing: a reused token revokes its family; a live one was
    asked for more than it was granted."""
    row = get_db().scalar(select(RefreshToken).where(RefreshToken.token_hash == hashed))
    if row is None or row.client_id != client.row.id or row.revoked_at is not None:
        raise InvalidGrantError("The refresh token is invalid, expired or revoked.")
    if row.used_at is not None:
        revoke_grant(row.grant_id)
        raise InvalidGrantError("The refresh token was already used; its family is revoked.")
    if asked is not None and as_utc(row.expires_at) > now:
        raise InvalidScopeError("A refresh may only narrow the granted scope.")
    raise InvalidGrantError("The refresh token is invalid, expired or revoked.")


def _issue_rotated(
    client: RelyingParty,
    rotated: Rotation,
    asked: list[str] | None,
    successor: str,
    new_hash: str,
) -> dict[str, Any]:
    """Check what the rotation found and issue the tokens of a claimed refresh token."""
    claimed = rotated.claimed
    granted = claimed.scope.split()
    if asked is not None:
        granted = [s for s in granted if s in asked]
    narrowed = " ".join(granted)
    if "offline_access" not in granted:
        narrowed += " offline_access"  # the rotated token keeps the refresh ability
    session = rotated.session
    if session is None:
        raise InvalidGrantError("The session has ended.")
    account = _active(rotated.account)
    if account.person_id != session.person_id:
        raise InvalidGrantError("The session belongs to another person.")
    if narrowed != claimed.scope:
        narrow(get_db, new_hash, narrowed)
    alive = store_sessions.touch_for_refresh(
        session.id, claimed.grant_id, current_app.config["SESSION_IDLE_SECONDS"]
    )
    if alive == -1:
        revoke_grant(claimed.grant_id)
        raise InvalidGrantError("The grant was revoked.")
    # 0: no Redis copy (a failover lost it); the rotation found the record live and seen
    # within the idle time, which decides.
    if not _needs_person(narrowed, claimed.claims):
        account = replace(account, person=None)
    return issue_tokens(
        client,
        account,
        session,
        scope=narrowed,
        grant_id=claimed.grant_id,
        nonce=None,
        claims_request=claimed.claims,
        refresh=successor,
    )


# The grants as Authlib's token endpoint runs them (idp/oidc/token_lane.py answers the usual
# requests without it): the client authenticated by Authlib, the rest above.


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """RFC 6749 §4.1.3 with PKCE S256 for every client and an exact redirect_uri."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_token_request(self) -> None:
        """Authenticate the client."""
        self.request.client = self.authenticate_token_endpoint_client()

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Redeem the code and issue tokens."""
        return 200, redeem_code(self.request.client, self.request.form), self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """RFC 6749 §6: refresh tokens rotate on use; a reused one revokes its whole family."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_token_request(self) -> None:
        """Authenticate the client."""
        self.request.client = self.authenticate_token_endpoint_client()

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Rotate the refresh token and issue tokens."""
        return (
            200,
            rotate_refresh(self.request.client, self.request.form),
            self.TOKEN_RESPONSE_HEADER,
        )
