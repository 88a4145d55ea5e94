"""Loo uus konto → Esita andmed ja taotle kontot: the parent's e-mail and the child's
isikukood, a confirmation link, the application form pre-filled, then pending for the school."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import update
from werkzeug.wrappers import Response

from idp.models import Application, School, utcnow
from idp.outbox.queue import queue_mail
from idp.store import limits
from idp.views.access import (
    invalid_link,
    link_page,
    private,
    school_or_404,
    take_link,
    too_many_mails,
)
from shared import i18n, isikukood
from shared.db import get_db
from shared.mail import is_address
from shared.security import check_csrf

bp = Blueprint("apply", __name__)

RELATIONS = ("ema", "isa", "eestkostja", "muu")
LANGUAGES = ("et", "ru", "en")
# The confirmed application this browser may fill in (set by the confirmation link).
SESSION_KEY = "application"


def code_problem(code: str, whose: str) -> str | None:
    """A clear sentence when the typed isikukood is not one (whose: "child" or "own")."""
    found = isikukood.problem(code)
    if found is None:
        return None
    subject = _("Lapse isikukood") if whose == "child" else _("Isikukood")
    return {
        "characters": _("%(subject)s koosneb ainult numbritest 0–9.", subject=subject),
        "length": _(
            "%(subject)s on täpselt 11 numbrit pikk; sisestatud on %(n)d.",
            subject=subject,
            n=len(code),
        ),
        "date": _(
            "%(subject)s ei sobi: selles olevat sünnikuupäeva ei ole olemas. Kontrolli numbreid.",
            subject=subject,
        ),
        "checksum": _(
            "%(subject)s ei sobi: viimane (kontroll)number ei klapi. Kontrolli, et "
            "kõik 11 numbrit on õiged.",
            subject=subject,
        ),
    }[found]


@bp.get("/s/<slug>/new")
def new_account(slug: str) -> str:
    """Loo uus konto: the two doors of the school's letter."""
    return render_template("new_account.html", school=school_or_404(slug))


@bp.route("/s/<slug>/apply", methods=["GET", "POST"])
@limits.forms()
def start(slug: str) -> Any:
    """Esita taotlus sisse logimata: the e-mail and the child's code; a confirmation link is
    mailed. The answer is the same for every address."""
    school = school_or_404(slug)
    if request.method == "GET":
        return render_template("apply_start.html", school=school, errors={}, form={})
    check_csrf()
    email = request.form.get("email", "").strip()[:320]
    code = request.form.get("child_isikukood", "").strip().replace(" ", "")[:40]
    errors = {}
    if not is_address(email):
        errors["email"] = _("Kirjuta oma e-posti aadress, näiteks mari@example.ee.")
    problem = code_problem(code, "child")
    if problem:
        errors["child_isikukood"] = problem
    if errors:
        return render_template(
            "apply_start.html",
            school=school,
            errors=errors,
            form={"email": email, "child_isikukood": code},
        ), 400
    if not too_many_mails("apply", school.slug, email):
        db = get_db()
        # The language the parent is applying in, until the form asks them.
        application = Application(
            school_id=school.id, email=email, child_isikukood=code, locale=i18n.current()
        )
        db.add(application)
        db.flush()
        queue_mail(
            db,
            email,
            "apply_confirm",
            school_id=school.id,
            locale=application.locale,
            one_time_link={"purpose": "confirm", "subject": f"application:{application.id}"},
        )
    return render_template(
        "apply_sent.html",
        school=school,
        hours=current_app.config["LINK_SECONDS"]["confirm"] // 3600,
    )


@bp.get("/s/<slug>/apply/confirm")
def confirm_page(slug: str) -> Response:
    """The confirmation link's page: a button (a GET never uses the link)."""
    school = school_or_404(slug)
    return link_page(
        school,
        _("Kinnita e-posti aadress"),
        _("Vajuta nuppu, et kinnitada oma e-posti aadress ja jätkata konto taotluse täitmist."),
        _("Kinnita ja jätka"),
        request.path,
    )


@bp.post("/s/<slug>/apply/confirm")
@limits.forms()
def confirm(slug: str) -> Response:
    """Use the confirmation link: the application is confirmed and this browser may fill it."""
    check_csrf()
    school = school_or_404(slug)
    again = (url_for("apply.start", slug=school.slug), _("Alusta taotlust uuesti"))
    used = take_link(school.slug, ("confirm",), school.id)
    if used is None:
        return invalid_link(school, *again)
    application_id = used.subject_id("application")
    db = get_db()
    db.execute(
        update(Application)
        .where(Application.id == application_id, Application.status == "unconfirmed")
        .values(status="confirmed", confirmed_at=utcnow())
    )
    session[SESSION_KEY] = application_id
    return private(redirect(url_for("apply.form", slug=school.slug), 303))


def _confirmed(school: School) -> Application | None:
    application_id = session.get(SESSION_KEY)
    application = get_db().get(Application, application_id) if application_id else None
    if (
        application is None
        or application.school_id != school.id
        or (application.status != "confirmed")
    ):
        return None
    return application


@bp.route("/s/<slug>/apply/form", methods=["GET", "POST"])
@limits.forms()
def form(slug: str) -> Any:
    """The application form, pre-filled with the e-mail and the child's code; submitting it
    leaves it pending for the school's administrator."""
    school = school_or_404(slug)
    application = _confirmed(school)
    if application is None:
        return invalid_link(
            school, url_for("apply.start", slug=school.slug), _("Alusta taotlust uuesti")
        )
    g.page_locale = application.locale  # the form speaks the language they applied in
    if request.method == "GET":
        return private(
            make_response(
                render_template(
                    "apply_form.html",
                    school=school,
                    app=application,
                    form={"language": i18n.current()},
                    errors={},
                )
            )
        )
    check_csrf()
    values = {
        name: request.form.get(name, "").strip()[:200]
        for name in ("given_name", "family_name", "phone", "relation", "language", "isikukood")
    }
    values["isikukood"] = values["isikukood"].replace(" ", "")
    errors = {}
    if not values["given_name"]:
        errors["given_name"] = _("Kirjuta oma eesnimi.")
    if not values["family_name"]:
        errors["family_name"] = _("Kirjuta oma perekonnanimi.")
    if len([c for c in values["phone"] if c.isdigit()]) < 5:
        errors["phone"] = _("Kirjuta telefoninumber, näiteks +372 5123 4567.")
    if values["relation"] not in RELATIONS:
        errors["relation"] = _("Vali, kes sa lapsele oled.")
    if values["language"] not in LANGUAGES:
        errors["language"] = _("Vali keel, milles soovid Stuudiumit kasutada.")
    if values["isikukood"]:
        problem = code_problem(values["isikukood"], "own")
        if problem:
            errors["isikukood"] = problem
    if errors:
        return private(
            make_response(
                render_template(
                    "apply_form.html", school=school, app=application, form=values, errors=errors
                ),
                400,
            )
        )
    db = get_db()
    data = {k: v for k, v in values.items() if k != "language" and v}
    submitted = db.execute(
        update(Application)
        .where(Application.id == application.id, Application.status == "confirmed")
        .values(status="pending", submitted_at=utcnow(), data=data, locale=values["language"])
        .returning(Application.id)
    ).first()
    session.pop(SESSION_KEY, None)
    if submitted is None:  # submitted from another tab a moment ago
        return invalid_link(
            school, url_for("apply.start", slug=school.slug), _("Alusta taotlust uuesti")
        )
    return private(redirect(url_for("apply.done", slug=school.slug), 303))


@bp.get("/s/<slug>/apply/done")
def done(slug: str) -> str:
    """What happens next."""
    return render_template("apply_done.html", school=school_or_404(slug))
