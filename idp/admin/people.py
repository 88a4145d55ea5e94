"""The tenant admin API's people: read one account with its person's data and version, create an
account, and correct personal data version-checked (If-Match → 409 on a stale version).

ARCHITECTURE "Who may change what": names, phone and birth date a school may correct; the login
e-mail only for a person whose accounts are all at that school (a linked person changes it
themselves), and only by an actor who may manage the account (may_change_factors); the old
address is told and the person's unused links die with it. Which class a teacher may correct
is the school instance's check.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, g, request, url_for
from sqlalchemy import func, select, update

from idp.admin.api import admin_call, audit, bp, json_answer, target_account
from idp.admin.errors import (
    EmailInUse,
    Forbidden,
    InvalidRequest,
    LoginFactor,
    PreconditionRequired,
    VersionMismatch,
)
from idp.models import Account, Person, School, utcnow
from idp.oidc.claims import person_changed_claims
from idp.outbox.queue import queue_mail
from idp.people import one_time_links as links
from idp.people.accounts import AccountError, create_account, find_login_account
from idp.people.sync import record_person_change
from idp.sso.logout import Scope, end_sessions
from shared.db import get_db
from shared.phones import is_phone

# Claim name in the API → the person's column.
CORRECTABLE = {
    "given_name": "given_name",
    "family_name": "family_name",
    "phone_number": "phone",
    "birthdate": "birth_date",
    "email": "email",
}
# The roles whose login factors a teacher may change: nobody who works at the school.
TEACHER_MANAGES = frozenset({"parent", "student"})


def _only_here(account: Account) -> bool:
    """Whether all the person's accounts are at this account's school (not linked elsewhere)."""
    others = get_db().scalar(
        select(func.count())
        .select_from(Account)
        .where(Account.person_id == account.person_id, Account.school_id != account.school_id)
    )
    return not others


def may_change_factors(actor: Account, target: Account) -> bool:
    """Whether the acting account may change the target's login factors: never its own person's
    (a person changes their own), an admin anyone else's, a teacher only a parent's or a
    student's (not a teacher's, a staff member's or an admin's)."""
    if target.person_id == actor.person_id:
        return False
    return "admin" in actor.roles or set(target.roles) <= TEACHER_MANAGES


def account_data(account: Account) -> dict[str, Any]:
    """One account with its person's current data and version (never the personal code);
    whether the acting account may change its login e-mail here."""
    person = account.person
    editable = _only_here(account) and may_change_factors(g.actor, account)
    return {
        "sub": account.sub,
        "roles": list(account.roles),
        "status": account.status,
        "version": person.version,
        "login_factors_editable": editable,
        **person_changed_claims(person, account),
    }


def _with_etag(body: dict[str, Any], status: int = 200) -> Response:
    resp = json_answer(body, status)
    resp.headers["ETag"] = f'"{body["version"]}"'
    return resp


@bp.get("/accounts/<sub>")
@admin_call("admin", "teacher")
def account(sub: str) -> Response:
    """One account of the school, with the version to send back in If-Match."""
    return _with_etag(account_data(target_account(sub)))


def _text(body: dict[str, Any], name: str, limit: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise AccountError(f"{name} must not be empty")
        return None
    if not isinstance(value, str) or len(value.strip()) > limit:
        raise AccountError(f"{name} must be a string of at most {limit} characters")
    return value.strip()


def _changes(body: dict[str, Any]) -> dict[str, Any]:
    """The columns a correction sets, validated; AccountError says what is wrong."""
    unknown = set(body) - set(CORRECTABLE)
    if unknown:
        raise AccountError(f"not correctable here: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    for name in ("given_name", "family_name"):
        if name in body:
            changes[name] = _text(body, name, 200, required=True)
    if "phone_number" in body:
        phone = _text(body, "phone_number", 40, required=False)
        if phone is not None and not is_phone(phone):
            raise AccountError("phone_number is not a phone number")
        changes["phone"] = phone
    if "birthdate" in body:
        raw = _text(body, "birthdate", 10, required=False)
        try:
            changes["birth_date"] = dt.date.fromisoformat(raw) if raw else None
        except ValueError as exc:
            raise AccountError("birthdate must be YYYY-MM-DD") from exc
    if "email" in body:
        email = _text(body, "email", 320, required=True)
        if email is None or "@" not in email:
            raise AccountError("email is not an e-mail address")
        changes["email"] = email
    return changes


def _if_match() -> int:
    raw = request.headers.get("If-Match")
    if raw is None:
        raise PreconditionRequired()
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise InvalidRequest("If-Match must be a version.")
    return int(value)


def _check_factor_change(target: Account, email: str) -> None:
    """Refuse when this school's acting account may not make email the target's login e-mail:
    not an account it may manage (403), a person linked elsewhere, an address in use."""
    if not may_change_factors(g.actor, target):
        raise Forbidden(
            "The acting account may not change this account's login e-mail: a "
            "teacher only a parent's or a student's, an admin anyone's but their "
            "own (a person changes their own)."
        )
    if not _only_here(target):
        raise LoginFactor()
    taken = find_login_account(get_db(), target.school_id, email)
    if taken is not None and taken.id != target.id:
        raise EmailInUse()


def _change_login_email(target: Account, old: str | None, new: str) -> None:
    """After the person's row was written (and locked): every account logs in with the new
    address, unverified; the person's unused links die; the old address is told who changed
    it. The caller commits."""
    db = get_db()
    person = target.person
    db.execute(
        update(Account).where(Account.person_id == person.id).values(login_email=new.lower())
    )
    db.execute(update(Person).where(Person.id == person.id).values(email_verified=False))
    links.void_for_person(db, person.id)
    if old and old.strip().lower() != new.strip().lower():
        school = db.get(School, target.school_id)
        queue_mail(
            db,
            old,
            "email_changed",
            school_id=target.school_id,
            locale=person.locale,
            given_name=person.given_name,
            old_email=old,
            new_email=new,
            changed_by=school.name if school else None,
        )


@bp.patch("/accounts/<sub>/person")
@admin_call("admin", "teacher")
def correct(sub: str) -> Response:
    """Correct a person's data if If-Match is their current version; one of two concurrent
    corrections of the same version wins, the other gets 409 with the current data."""
    target = target_account(sub)
    version = _if_match()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body is a JSON object of the fields to change.")
    try:
        changes = _changes(body)
    except AccountError as exc:
        raise InvalidRequest(str(exc)) from exc
    db = get_db()
    person = target.person
    changes = {k: v for k, v in changes.items() if getattr(person, k) != v}
    email_changed = "email" in changes
    old_email = person.email  # told of the change once it is made
    if email_changed:
        _check_factor_change(target, changes["email"])
    # The version check and the write in one statement: a concurrent correction that committed
    # first makes this one match nothing (PostgreSQL re-checks the row after the lock).
    values = {"updated_at": utcnow(), **changes} if changes else {"version": Person.version}
    done = db.execute(
        update(Person).where(Person.id == person.id, Person.version == version).values(**values)
    )
    db.refresh(person)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise VersionMismatch(current=account_data(target))
    if changes:
        if email_changed:
            _change_login_email(target, old_email, changes["email"])
        names = [n for n, column in CORRECTABLE.items() if column in changes]
        record_person_change(db, person.id, names, "correction", g.actor.sub)
        db.refresh(person)
        if email_changed:  # a login factor changed: the person's sessions end (and commit)
            end_sessions(db, Scope(person_id=person.id), "login_factor_changed")
    return _with_etag(
        {"account": account_data(target), "changed": bool(changes), "version": person.version}
    )


@bp.post("/accounts")
@admin_call("admin")
def create() -> Response:
    """Create an account at the school: always a new person (never merged by e-mail)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body is a JSON object.")
    db = get_db()
    try:
        email = _text(body, "email", 320, required=True) or ""
        roles = body.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AccountError("roles must be a list of role names")
        if find_login_account(db, g.actor.school_id, email) is not None:
            raise EmailInUse("An active account at this school has this login e-mail.")
        created = create_account(
            db,
            g.actor.school_id,
            email=email,
            given_name=_text(body, "given_name", 200, True) or "",
            family_name=_text(body, "family_name", 200, True) or "",
            roles=roles,
        )
        extra = _changes({k: body[k] for k in ("phone_number", "birthdate") if k in body})
    except AccountError as exc:
        raise InvalidRequest(str(exc)) from exc
    for column, value in extra.items():
        setattr(created.person, column, value)
    audit("account.create", created, {"roles": created.roles})
    resp = _with_etag({**account_data(created)}, 201)
    resp.headers["Location"] = url_for("admin_api.account", sub=created.sub, _external=True)
    return resp
