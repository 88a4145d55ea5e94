"""An admin's page of account applications: each against the roster (is the child enrolled,
in which class, who are the child's known guardians, is the applicant one of them by a verified
identifier), approved or rejected at the IdP with this admin's own access token.

Approving when a risk applies — the child is not on the roster, or the applicant is not a
verified guardian — takes a second, explicit confirmation naming that risk (a confirmation of
another risk does not count, so a roster that changed since the page was read is asked again),
and makes the applicant the child's guardian only when the admin says so separately. The child's
code as the applicant typed it is shown to the admin on this page only (no-store), never put in
a URL, a log or a mail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from school_instance import admin_api, sessions
from school_instance.diary import queries
from school_instance.diary.accounts import _access_token, failure
from school_instance.diary.blueprint import bp
from school_instance.diary.guardianship import Match, match_guardian
from school_instance.models import Guardian, Member, SchoolClass, Student
from school_instance.sso import page, role_required
from school_instance.tenancy import current, get_scoped
from shared import i18n
from shared.db import get_db
from shared.security import check_csrf

MAX_REASON = 2000


@dataclass
class Review:
    """One application as the admin sees it against the roster."""

    application: dict[str, Any]
    student: Student | None
    school_class: SchoolClass | None
    guardians: list[Member]
    match: Match
    # The known guardians whose name the applicant gave with another e-mail: their contact as
    # the school recorded it, for the admin to ask them.
    named_guardians: list[Member]

    @property
    def applicant_is_guardian(self) -> bool:
        """The applicant is a known guardian by a verified identifier (their e-mail)."""
        return self.match is Match.VERIFIED

    @property
    def risk(self) -> str | None:
        """The risk approving takes, which the second confirmation must name: "not-enrolled"
        (no child with this code on the roster), "not-guardian" (not a verified guardian)."""
        if self.student is None:
            return "not-enrolled"
        return None if self.applicant_is_guardian else "not-guardian"

    @property
    def submitted(self) -> dt.datetime | None:
        """When the applicant submitted the form."""
        value = self.application.get("submitted_at")
        try:
            return dt.datetime.fromisoformat(str(value)) if value else None
        except ValueError:
            return None

    @property
    def language(self) -> str:
        """The language the applicant used (the welcome mail's), in its own name."""
        code = str(self.application.get("locale") or "")
        return i18n.NAMES.get(code, code)


def review(application: dict[str, Any]) -> Review:
    """Check an application against the school's roster (knowing a child's code, or a parent's
    name, proves nothing: the guardians the school knows are shown beside the applicant)."""
    student = queries.student_with_code(str(application.get("child_isikukood") or ""))
    guardians = queries.guardians_of(student.id) if student else []
    cls = get_scoped(SchoolClass, student.class_id) if student and student.class_id else None
    found = match_guardian(guardians, application)
    return Review(application, student, cls, guardians, found.match, found.named)


def _token_or_login() -> str | Response:
    token = _access_token()
    if token is None:
        return redirect(url_for("sso.login", target_link_uri=url_for("diary.applications")), 303)
    return token


def _back() -> tuple[str, str]:
    return _("Taotluste juurde"), url_for("diary.applications")


def _decision_failure(exc: admin_api.AdminApiError) -> Response:
    back = _back()
    if exc.status == 404 or exc.error == "already_decided":
        return page(
            _("Taotlust ei leitud"),
            _(
                "Seda taotlust ei ole enam ootel – võib-olla otsustas selle just keegi teine. Ava "
                "taotluste nimekiri uuesti."
            ),
            404 if exc.status == 404 else 409,
            back,
        )
    if exc.error == "email_in_use":
        return page(
            _("Kontot ei saa luua"),
            _(
                "Selle e-posti aadressiga on koolis juba aktiivne konto. Kui see on sama inimene, "
                "lükka taotlus tagasi ja palu tal kasutada „Saada mulle ligipääsuandmed”; muidu "
                "palu tal taotleda kontot teise aadressiga."
            ),
            409,
            back,
        )
    if exc.error == "isikukood_in_use":
        return page(
            _("Kontot ei saa luua"),
            _(
                "Taotleja isikukoodiga on koolis juba aktiivne konto, ja üks isikukood saab koolis "
                "olla ainult ühel kontol. Kui see on sama inimene, lükka taotlus tagasi ja palu "
                "tal kasutada „Saada mulle ligipääsuandmed”; kui isikukood on valesti kirjas, "
                "lükka taotlus tagasi ja palu tal taotleda uuesti."
            ),
            409,
            back,
        )
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
    sessions.remember_pending_applications(current(), len(found))
    resp = make_response(
        render_template(
            "diary/applications.html",
            reviews=[review(a) for a in found],
            confirm_risk_label=confirm_risk_label,
        )
    )
    resp.headers["Cache-Control"] = "no-store"  # the children's codes as the applicants typed
    return resp


def _pending_review(token: str, application_id: int) -> Review | Response:
    """The pending application as the admin sees it now, or the page saying it is gone."""
    try:
        found = admin_api.applications(current(), token)
    except admin_api.AdminApiError as exc:
        return failure(exc, _back())
    for application in found:
        if application.get("id") == application_id:
            return review(application)
    return _decision_failure(admin_api.AdminApiError(404, "not_found"))


def confirm_risk_label(risk: str | None) -> str:
    """The second confirmation's words: they name the risk the admin takes."""
    if risk == "not-enrolled":
        return _(
            "Kontrollisin taotlejat muul viisil ja loon konto, kuigi selle isikukoodiga last "
            "kooli nimekirjas ei ole ja taotleja ei näe ühegi lapse andmeid."
        )
    return _(
        "Kontrollisin taotlejat muul viisil ja loon konto, kuigi tema e-posti aadress ei "
        "ole kooli andmetes lapse vanema oma."
    )


def _unconfirmed_risk(checked: Review) -> Response | None:
    """Approving when a risk applies needs the form's second confirmation of that very risk."""
    if checked.risk is None or request.form.get("confirm_risk") == checked.risk:
        return None
    if checked.risk == "not-enrolled":
        why = _(
            "Selle isikukoodiga last kooli nimekirjas ei ole: konto loomisel ei näe taotleja "
            "ühegi lapse andmeid. Kontrolli isikukoodi ja lapse nimekirja; kui lood konto "
            "ikkagi, märgi taotluse juures „%(label)s” ja vajuta uuesti „Kinnita ja loo konto”.",
            label=confirm_risk_label(checked.risk),
        )
    else:
        why = _(
            "Taotleja e-posti aadress ei ole kooli andmetes lapse vanema oma, ja nime võib "
            "sisestada igaüks. Kui oled taotlejat muul viisil kontrollinud (näiteks helistanud "
            "vanemale kooli andmetes oleval numbril), märgi taotluse juures „%(label)s” ja vajuta "
            "uuesti „Kinnita ja loo konto”.",
            label=confirm_risk_label(checked.risk),
        )
    return page(_("Kontot ei loodud"), why, 400, _back())


def _add_member(account: dict[str, Any]) -> Member:
    """Record the new parent in the school (not yet anyone's guardian)."""
    db = get_db()
    tenant_id = current().id
    member = db.scalar(
        select(Member).where(Member.tenant_id == tenant_id, Member.sub == account["sub"])
    )
    if member is None:
        member = Member(tenant_id=tenant_id, sub=account["sub"], roles=["parent"])
        db.add(member)
    member.given_name, member.family_name = account["given_name"], account["family_name"]
    member.email = account.get("email")
    db.flush()
    return member


def _add_guardian(member: Member, student: Student, application: dict[str, Any]) -> None:
    """Record the member as the child's guardian with the relation the applicant gave."""
    if not queries.is_guardian(member.id, student.id):
        get_db().add(
            Guardian(
                tenant_id=current().id,
                student_id=student.id,
                member_id=member.id,
                relation=str(application.get("relation") or "parent")[:32],
            )
        )


def _approved(checked: Review, result: dict[str, Any]) -> str:
    """Record the approved parent; the guardian only when verified or the admin said so.
    Returns the message that says which happened."""
    member = _add_member(result["account"])
    student = queries.student_with_code(str(result["application"].get("child_isikukood") or ""))
    name = f"{result['account']['given_name']} {result['account']['family_name']}"
    done = _("%(name)s konto on loodud ja talle on saadetud sisselogimise link.", name=name)
    if student is None:
        return done
    if checked.applicant_is_guardian or request.form.get("add_guardian") == "1":
        _add_guardian(member, student, result["application"])
        return done + " " + _("Ta on nüüd õpilase %(child)s vanem.", child=student.name)
    return (
        done
        + " "
        + _(
            "Õpilase %(child)s vanemaks teda ei märgitud: ta ei näe lapse tunde ega puudumisi.",
            child=student.name,
        )
    )


@bp.post("/admin/applications/<int:application_id>/<action>")
@role_required("admin")
def decide(application_id: int, action: str) -> Any:
    """Approve (the IdP creates the account and mails the login link; the school records the
    guardian if verified, or if the admin said so) or reject with a reason (mailed)."""
    check_csrf()
    if action not in ("approve", "reject"):
        return page(_("Lehte ei leitud"), _("Sellist toimingut ei ole."), 404, _back())
    reason = request.form.get("reason", "").strip()
    if action == "reject" and not 0 < len(reason) <= MAX_REASON:
        return page(
            _("Kirjuta põhjus"),
            _(
                "Taotluse tagasilükkamisel kirjuta põhjus – saadame selle taotlejale, et ta teaks, "
                "mida edasi teha."
            ),
            400,
            _back(),
        )
    token = _token_or_login()
    if isinstance(token, Response):
        return token
    checked = _pending_review(token, application_id) if action == "approve" else None
    if isinstance(checked, Response):
        return checked
    if checked is not None and (refused := _unconfirmed_risk(checked)) is not None:
        return refused
    try:
        result = admin_api.decide(current(), token, application_id, action, reason or None)
    except admin_api.AdminApiError as exc:
        return _decision_failure(exc)
    finally:
        sessions.forget_pending_applications(current())
    if checked is None:
        flash(_("Taotlus on tagasi lükatud ja taotlejale on saadetud põhjus."))
    else:
        flash(_approved(checked, result))
    return redirect(url_for("diary.applications"), 303)
