"""The tenant admin API (/api/admin/v1): a school manages that school's accounts.

A call carries one of our access tokens (RFC 9068; errors in RFC 6750's wire format): either a
person's own (checked as userinfo checks it; the acting account is its sub), or one of the school
client's client credentials grant (aud the admin API, scope `admin`), with the acting account's
sub in the Stuudium-Acting-Sub header. The acting account must be active at that school with the
role the call needs; every call stays inside that school, and every change is audited with the
actor's sub.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import select

from idp.admin.errors import AccountNotFound, AdminApiError, EmailInUse, OwnAccount
from idp.models import Account, AuditEvent, Person
from idp.oidc.client_credentials import ADMIN_API_PATH
from idp.oidc.resource import (
    bearer_error,
    bearer_token,
    check_access_token,
    check_client_token,
)
from idp.people import one_time_links as links
from idp.people.accounts import find_login_account
from idp.sso.logout import Scope, end_sessions, lock_person
from shared.db import get_db

bp = Blueprint("admin_api", __name__, url_prefix=ADMIN_API_PATH)
ACTING_SUB = "Stuudium-Acting-Sub"


def json_answer(body: dict[str, Any], status: int = 200) -> Response:
    """A JSON answer that is never cached."""
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def error_answer(exc: AdminApiError) -> Response:
    """The one way an admin API error becomes an answer: its JSON body and its status."""
    return json_answer(exc.body(), exc.status)


bp.register_error_handler(AdminApiError, error_answer)


def _acting_account() -> Account | Response:
    """The account a call acts as: a person's token's sub, or a school client's token and the
    acting sub it names (an account of that client's school only)."""
    token = bearer_token() or ""
    named = request.headers.get(ACTING_SUB)
    claims = check_access_token(token)
    if claims is not None:
        if named is not None and named != claims["sub"]:
            return bearer_error(
                "invalid_request", 400, f"{ACTING_SUB} differs from the token's subject."
            )
        actor = get_db().scalar(select(Account).where(Account.sub == claims["sub"]))
        return actor if actor is not None else bearer_error("invalid_token", 401)
    school_id = check_client_token(token)
    if school_id is None:
        return bearer_error("invalid_token", 401)
    if not named or len(named) > 64:
        return bearer_error("invalid_request", 400, f"A client's call names {ACTING_SUB}.")
    actor = get_db().scalar(
        select(Account).where(Account.sub == named, Account.school_id == school_id)
    )
    if actor is None:
        return bearer_error(
            "insufficient_scope", 403, "The acting account is not an account of this school."
        )
    return actor


def admin_call(*roles: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Let the call through only for an active acting account with one of roles at its school;
    g.actor is it."""

    def decorator(view: Callable[..., Response]) -> Callable[..., Response]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Response:
            actor = _acting_account()
            if isinstance(actor, Response):
                return actor
            if actor.status != "active" or not set(roles) & set(actor.roles):
                return bearer_error(
                    "insufficient_scope",
                    403,
                    f"The acting account is not an active {' or '.join(roles)} of its school.",
                )
            g.actor = actor
            return view(*args, **kwargs)

        return wrapped

    return decorator


def target_account(sub: str) -> Account:
    """An account of the acting account's own school; any other school's is not found."""
    account: Account | None = get_db().scalar(
        select(Account).where(Account.sub == sub, Account.school_id == g.actor.school_id)
    )
    if account is None:
        raise AccountNotFound()
    return account


def _account(account: Account, person: Person) -> dict[str, Any]:
    """What an admin sees of an account: never the personal code."""
    return {
        "sub": account.sub,
        "given_name": person.given_name,
        "family_name": person.family_name,
        "email": person.email,
        "roles": list(account.roles),
        "status": account.status,
    }


def audit(action: str, account: Account, details: dict[str, Any]) -> None:
    """Record a change to an account with the acting account's sub and the school."""
    get_db().add(
        AuditEvent(
            action=action,
            actor=g.actor.sub,
            school_id=account.school_id,
            person_id=account.person_id,
            details={"sub": account.sub, **details},
        )
    )


@bp.get("/accounts")
@admin_call("admin")
def accounts() -> Response:
    """The school's accounts."""
    rows = (
        get_db()
        .execute(
            select(Account, Person)
            .join(Person, Person.id == Account.person_id)
            .where(Account.school_id == g.actor.school_id)
            .order_by(Person.family_name, Person.given_name, Account.id)
        )
        .all()
    )
    return json_answer({"accounts": [_account(a, p) for a, p in rows]})


@bp.post("/accounts/<sub>/disable")
@admin_call("admin")
def disable(sub: str) -> Response:
    """Disable an account and end what it signed in to: the person's unused links are void,
    sessions that logged in with it end, the person's other sessions lose this school
    (ARCHITECTURE: disabling is like unlink)."""
    target = target_account(sub)
    if target.id == g.actor.id:
        raise OwnAccount()
    ended = None
    lock_person(get_db(), target.person_id)
    get_db().refresh(target)  # as it is now that no login or link of the person runs
    if target.status != "disabled":  # already disabled: nothing new is ended or sent
        target.status = "disabled"
        audit("account.disable", target, {})
        # After the person's lock: the account's and the person's unused links die with it
        # (enabling it again does not bring them back).
        links.void_for_person(get_db(), target.person_id)
        # One transaction: the status, the audit row, the ended sessions and the outbox.
        ended = end_sessions(
            get_db(),
            Scope(person_id=target.person_id, school_id=target.school_id),
            "account_disabled",
        )
    return json_answer(
        {
            "account": _account(target, target.person),
            "changed": ended is not None,
            "sessions_ended": len(ended.session_ids) if ended else 0,
            "sessions_left_school": len(ended.left_session_ids) if ended else 0,
            "logouts_queued": len(ended.delivery_ids) if ended else 0,
        }
    )


@bp.post("/accounts/<sub>/enable")
@admin_call("admin")
def enable(sub: str) -> Response:
    """Enable a disabled account: it can log in again."""
    db = get_db()
    target = target_account(sub)
    changed = target.status != "active"
    if changed:
        taken = find_login_account(db, target.school_id, target.login_email or "")
        if taken is not None and taken.id != target.id:
            raise EmailInUse()
        target.status = "active"
        audit("account.enable", target, {})
    return json_answer({"account": _account(target, target.person), "changed": changed})
