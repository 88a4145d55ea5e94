"""The tenant admin API (/api/admin/v1): a school's admins manage that school's accounts.

A call carries one of our access tokens (RFC 9068, checked as userinfo checks it; errors in
RFC 6750's wire format). The acting account is the token's sub: it must be active and an admin at
its school, every call stays inside that school, and every change is audited with the actor's sub.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, g, jsonify
from sqlalchemy import select

from idp.accounts import find_login_account
from idp.logout import Scope, end_sessions
from idp.models import Account, AuditEvent, Person
from idp.oidc.resource import bearer_error, bearer_token, check_access_token
from shared.db import get_db

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin/v1")


def _json(body: dict[str, Any], status: int = 200) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def admin_call(view: Callable[..., Response]) -> Callable[..., Response]:
    """Let the call through only with a live access token of an active admin; g.actor is it."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        claims = check_access_token(bearer_token() or "")
        if claims is None:
            return bearer_error("invalid_token", 401)
        actor = get_db().scalar(select(Account).where(Account.sub == claims["sub"]))
        if actor is None:
            return bearer_error("invalid_token", 401)
        if actor.status != "active" or "admin" not in actor.roles:
            return bearer_error("insufficient_scope", 403,
                                "The token's account is not an active admin of its school.")
        g.actor = actor
        return view(*args, **kwargs)

    return wrapped


def _target(sub: str) -> Account | None:
    """An account of the acting admin's own school; any other school's is not found."""
    account: Account | None = get_db().scalar(select(Account).where(
        Account.sub == sub, Account.school_id == g.actor.school_id))
    return account


def _not_found() -> Response:
    return _json({"error": "not_found", "error_description": "No such account at this school."},
                 404)


def _account(account: Account, person: Person) -> dict[str, Any]:
    """What an admin sees of an account: never the personal code."""
    return {"sub": account.sub, "given_name": person.given_name,
            "family_name": person.family_name, "email": person.email,
            "roles": list(account.roles), "status": account.status}


def _audit(action: str, account: Account, details: dict[str, Any]) -> None:
    get_db().add(AuditEvent(action=action, actor=g.actor.sub, school_id=account.school_id,
                            person_id=account.person_id, details={"sub": account.sub, **details}))


@bp.get("/accounts")
@admin_call
def accounts() -> Response:
    """The school's accounts."""
    rows = get_db().execute(
        select(Account, Person).join(Person, Person.id == Account.person_id)
        .where(Account.school_id == g.actor.school_id)
        .order_by(Person.family_name, Person.given_name, Account.id)).all()
    return _json({"accounts": [_account(a, p) for a, p in rows]})


@bp.post("/accounts/<sub>/disable")
@admin_call
def disable(sub: str) -> Response:
    """Disable an account and end what it signed in to: sessions that logged in with it end,
    the person's other sessions lose this school (ARCHITECTURE: disabling is like unlink)."""
    target = _target(sub)
    if target is None:
        return _not_found()
    if target.id == g.actor.id:
        return _json({"error": "own_account",
                      "error_description": "An admin cannot disable their own account."}, 409)
    ended = None
    if target.status != "disabled":  # already disabled: nothing new is ended or sent
        target.status = "disabled"
        _audit("account.disable", target, {})
        # One transaction: the status, the audit row, the ended sessions and the outbox.
        ended = end_sessions(get_db(), Scope(person_id=target.person_id,
                                             school_id=target.school_id), "account_disabled")
    return _json({"account": _account(target, target.person), "changed": ended is not None,
                  "sessions_ended": len(ended.session_ids) if ended else 0,
                  "sessions_left_school": len(ended.left_session_ids) if ended else 0,
                  "logouts_queued": len(ended.delivery_ids) if ended else 0})


@bp.post("/accounts/<sub>/enable")
@admin_call
def enable(sub: str) -> Response:
    """Enable a disabled account: it can log in again."""
    db = get_db()
    target = _target(sub)
    if target is None:
        return _not_found()
    changed = target.status != "active"
    if changed:
        taken = find_login_account(db, target.school_id, target.login_email or "")
        if taken is not None and taken.id != target.id:
            return _json({"error": "email_in_use", "error_description":
                          "Another active account at this school has this login e-mail."}, 409)
        target.status = "active"
        _audit("account.enable", target, {})
    return _json({"account": _account(target, target.person), "changed": changed})
