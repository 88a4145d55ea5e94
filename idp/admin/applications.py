"""The tenant admin API's applications (/api/admin/v1/applications): a school's admins see
their school's pending applications and approve or reject them; no other school's are found.

Approval creates a new person with a parent account at the school (never merged with anyone by
e-mail) and mails a welcome login link; rejection mails the reason.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request
from sqlalchemy import select, update

from idp.admin.api import admin_call, error_answer, json_answer
from idp.admin.errors import (
    AdminApiError,
    AlreadyDecided,
    ApplicationNotFound,
    EmailInUse,
    InvalidApplication,
    InvalidRequest,
    IsikukoodInUse,
)
from idp.models import Application, AuditEvent, utcnow
from idp.outbox.queue import queue_mail
from idp.people import proofing
from idp.people.accounts import AccountError, IsikukoodTaken, create_account, find_login_account
from shared.db import get_db

bp = Blueprint("admin_applications", __name__, url_prefix="/api/admin/v1/applications")
bp.register_error_handler(AdminApiError, error_answer)

MAX_REASON = 2000


def _view(application: Application, email_in_use: bool | None = None) -> dict[str, Any]:
    """What the school's admin sees: the parent's own code only as present or not."""
    data = application.data or {}
    view = {
        "id": application.id,
        "status": application.status,
        "email": application.email,
        "child_isikukood": application.child_isikukood,
        "given_name": data.get("given_name"),
        "family_name": data.get("family_name"),
        "phone": data.get("phone"),
        "relation": data.get("relation"),
        "locale": application.locale,
        "has_isikukood": bool(data.get("isikukood")),
        "submitted_at": application.submitted_at.isoformat() if application.submitted_at else None,
    }
    if email_in_use is not None:
        view["email_in_use"] = email_in_use
    return view


def _pending(application_id: int) -> Application:
    """A pending application of the acting admin's own school; any other is not found."""
    found: Application | None = get_db().scalar(
        select(Application).where(
            Application.id == application_id,
            Application.school_id == g.actor.school_id,
            Application.status == "pending",
        )
    )
    if found is None:
        raise ApplicationNotFound()
    return found


def _decide(
    application: Application, status: str, reason: str | None, account_id: int | None = None
) -> bool:
    """Record the decision once: False when another admin decided a moment ago."""
    decided = (
        get_db()
        .execute(
            update(Application)
            .where(Application.id == application.id, Application.status == "pending")
            .values(
                status=status,
                decided_at=utcnow(),
                decided_by=g.actor.sub,
                reason=reason,
                account_id=account_id,
            )
            .returning(Application.id)
        )
        .first()
    )
    return decided is not None


@bp.get("")
@admin_call("admin")
def pending() -> Response:
    """The school's pending applications, oldest first, each flagged when its e-mail is
    already an active login at the school."""
    db = get_db()
    rows = db.scalars(
        select(Application)
        .where(Application.school_id == g.actor.school_id, Application.status == "pending")
        .order_by(Application.submitted_at, Application.id)
    ).all()
    return json_answer(
        {
            "applications": [
                _view(a, find_login_account(db, a.school_id, a.email) is not None) for a in rows
            ]
        }
    )


@bp.post("/<int:application_id>/approve")
@admin_call("admin")
def approve(application_id: int) -> Response:
    """Create the parent's account at this school and mail the welcome login link."""
    db = get_db()
    application = _pending(application_id)
    data = application.data or {}
    try:
        # The applicant typed their own code: kept, never an anchor for eID (people.proofing).
        account = create_account(
            db,
            application.school_id,
            email=application.email,
            given_name=data.get("given_name", ""),
            family_name=data.get("family_name", ""),
            roles=["parent"],
            isikukood=data.get("isikukood"),
            isikukood_source=proofing.APPLICANT,
        )
    except IsikukoodTaken as exc:
        db.rollback()
        raise IsikukoodInUse(str(exc)) from exc
    except AccountError as exc:
        db.rollback()
        raise (EmailInUse if "exists" in str(exc) else InvalidApplication)(str(exc)) from exc
    person = account.person
    person.phone, person.locale, person.email_verified = (
        data.get("phone"),
        application.locale,
        True,
    )
    if not _decide(application, "approved", None, account.id):
        db.rollback()
        raise AlreadyDecided()
    queue_mail(
        db,
        application.email,
        "welcome",
        school_id=application.school_id,
        locale=application.locale,
        given_name=person.given_name,
        one_time_link={"purpose": "welcome", "subject": f"account:{account.id}"},
    )
    db.add(
        AuditEvent(
            action="application.approve",
            actor=g.actor.sub,
            school_id=application.school_id,
            person_id=person.id,
            details={"application": application.id, "sub": account.sub},
        )
    )
    db.refresh(application)  # the decision as _decide's statement wrote it
    return json_answer(
        {
            "application": _view(application),
            "account": {
                "sub": account.sub,
                "given_name": person.given_name,
                "family_name": person.family_name,
                "email": person.email,
                "roles": list(account.roles),
                "status": account.status,
            },
        }
    )


@bp.post("/<int:application_id>/reject")
@admin_call("admin")
def reject(application_id: int) -> Response:
    """Reject with a reason, which the applicant is mailed."""
    body = request.get_json(silent=True)
    reason = str(body.get("reason") or "").strip() if isinstance(body, dict) else ""
    if not reason or len(reason) > MAX_REASON:
        raise InvalidRequest(f"A reason of 1–{MAX_REASON} characters is needed.")
    db = get_db()
    application = _pending(application_id)
    if not _decide(application, "rejected", reason):
        db.rollback()
        raise AlreadyDecided()
    queue_mail(
        db,
        application.email,
        "rejected",
        school_id=application.school_id,
        locale=application.locale,
        reason=reason,
        given_name=(application.data or {}).get("given_name", ""),
    )
    db.add(
        AuditEvent(
            action="application.reject",
            actor=g.actor.sub,
            school_id=application.school_id,
            details={"application": application.id},
        )
    )
    db.refresh(application)  # the decision as _decide's statement wrote it
    return json_answer({"application": _view(application)})
