"""An admin's page of account applications: each against the roster (is the child enrolled,
in which class, who are the child's known guardians), approved or rejected at the IdP with
this admin's own access token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from school_instance import admin_api
from school_instance.diary import queries
from school_instance.diary.accounts import _access_token, failure
from school_instance.diary.blueprint import bp
from school_instance.models import Guardian, Member, SchoolClass, Student
from school_instance.sso import page, role_required
from school_instance.tenancy import current, get_scoped
from shared.db import get_db
from shared.names import same_name
from shared.security import check_csrf

MAX_REASON = 2000


@dataclass
class Review:
    """One application as the admin sees it against the roster."""

    application: dict[str, Any]
    student: Student | None
    school_class: SchoolClass | None
    guardians: list[Member]
    applicant_is_guardian: bool


def _is_applicant(member: Member, application: dict[str, Any]) -> bool:
    """A known guardian is the applicant: the same e-mail, or the same given and family name."""
    email = (application.get("email") or "").strip().lower()
    if member.email and member.email.strip().lower() == email:
        return True
    return same_name(member.given_name, application.get("given_name") or "") and same_name(
        member.family_name, application.get("family_name") or "")


def review(application: dict[str, Any]) -> Review:
    """Check an application against the school's roster (knowing a child's code proves
    nothing: the guardians the school knows are shown beside the applicant)."""
    student = queries.student_with_code(str(application.get("child_isikukood") or ""))
    guardians = queries.guardians_of(student.id) if student else []
    cls = get_scoped(SchoolClass, student.class_id) if student and student.class_id else None
    return Review(application, student, cls, guardians,
                  any(_is_applicant(m, application) for m in guardians))


def _token_or_login() -> str | Response:
    token = _access_token()
    if token is None:
        return redirect(url_for("sso.login", target_link_uri=url_for("diary.applications")), 303)
    return token


def _decision_failure(exc: admin_api.AdminApiError) -> Response:
    back = (_("Taotluste juurde"), url_for("diary.applications"))
    if exc.status == 404 or exc.error == "already_decided":
        return page(_("Taotlust ei leitud"), _(
            "Seda taotlust ei ole enam ootel – võib-olla otsustas selle just keegi teine. Ava "
            "taotluste nimekiri uuesti."), 404 if exc.status == 404 else 409, back)
    if exc.error == "email_in_use":
        return page(_("Kontot ei saa luua"), _(
            "Selle e-posti aadressiga on koolis juba aktiivne konto. Kui see on sama inimene, "
            "lükka taotlus tagasi ja palu tal kasutada „Saada mulle ligipääsuandmed”; muidu "
            "palu tal taotleda kontot teise aadressiga."), 409, back)
    return failure(exc)


@bp.get("/admin/applications")
@role_required("admin")
def applications() -> Any:
    """The pending applications, each with what the roster says."""
    token = _token_or_login()
    if isinstance(token, Response):
        return token
    try:
        found = admin_api.applications(current(), token)
    except admin_api.AdminApiError as exc:
        return failure(exc)
    return render_template("diary/applications.html", reviews=[review(a) for a in found])


def _add_guardian(account: dict[str, Any], application: dict[str, Any]) -> Student | None:
    """Record the new parent in the school and, if the child is enrolled, as the child's
    guardian with the relation the applicant gave."""
    db = get_db()
    tenant_id = current().id
    member = db.scalar(select(Member).where(Member.tenant_id == tenant_id,
                                            Member.sub == account["sub"]))
    if member is None:
        member = Member(tenant_id=tenant_id, sub=account["sub"], roles=["parent"])
        db.add(member)
    member.given_name, member.family_name = account["given_name"], account["family_name"]
    member.email = account.get("email")
    db.flush()
    student = queries.student_with_code(str(application.get("child_isikukood") or ""))
    if student is not None:
        db.add(Guardian(tenant_id=tenant_id, student_id=student.id, member_id=member.id,
                        relation=str(application.get("relation") or "parent")[:32]))
    return student


@bp.post("/admin/applications/<int:application_id>/<action>")
@role_required("admin")
def decide(application_id: int, action: str) -> Any:
    """Approve (the IdP creates the account and mails the login link; the school records the
    guardian) or reject with a reason (mailed to the applicant)."""
    check_csrf()
    if action not in ("approve", "reject"):
        return page(_("Lehte ei leitud"), _("Sellist toimingut ei ole."), 404,
                    (_("Taotluste juurde"), url_for("diary.applications")))
    reason = request.form.get("reason", "").strip()
    if action == "reject" and not 0 < len(reason) <= MAX_REASON:
        return page(_("Kirjuta põhjus"), _(
            "Taotluse tagasilükkamisel kirjuta põhjus – saadame selle taotlejale, et ta teaks, "
            "mida edasi teha."), 400, (_("Taotluste juurde"), url_for("diary.applications")))
    token = _token_or_login()
    if isinstance(token, Response):
        return token
    try:
        result = admin_api.decide(current(), token, application_id, action, reason or None)
    except admin_api.AdminApiError as exc:
        return _decision_failure(exc)
    if action == "reject":
        flash(_("Taotlus on tagasi lükatud ja taotlejale on saadetud põhjus."))
    else:
        student = _add_guardian(result["account"], result["application"])
        name = f"{result['account']['given_name']} {result['account']['family_name']}"
        flash(_("%(name)s konto on loodud ja talle on saadetud sisselogimise link.", name=name)
              + (" " + _("Ta on nüüd õpilase %(child)s vanem.", child=student.name)
                 if student else ""))
    return redirect(url_for("diary.applications"), 303)
