"""Muuda e-posti aadressi: a link to the new address; the change takes effect when it is used."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from idp.models import Person
from idp.people.email_change import apply_change, request_change, taken_at
from idp.people.linking import linked_accounts
from idp.sso import sessions
from idp.store import limits
from idp.views.access import invalid_link, link_page, private, take_link
from idp.views.account import signed_in
from idp.views.errors import error_page
from idp.views.onward import onward, session_school
from shared.db import get_db
from shared.mail import is_address
from shared.security import check_csrf

bp = Blueprint("email", __name__)

# The link counters of the e-mail path: it belongs to no school.
COUNTER = "account"


def _taken(names: list[str]) -> str:
    return _(
        "Selle e-posti aadressiga on juba teine konto koolis %(schools)s. Ühes koolis "
        "saab ühe aadressiga sisse logida ainult üks konto; vali teine aadress.",
        schools=", ".join(names),
    )


@bp.route("/account/email", methods=["GET", "POST"])
@limits.forms()
@signed_in
def change() -> Any:
    """The form; on POST a confirmation link goes to the new address (nothing changes yet)."""
    person = g.person
    if request.method == "GET":
        return render_template("account_email.html", person=person, sent=None, error=None)
    check_csrf()
    new = request.form.get("email", "").strip()[:320]
    error = None
    if not is_address(new):
        error = _("Kirjuta uus e-posti aadress, näiteks mari@example.ee.")
    elif person.email and new.lower() == person.email.lower():
        error = _("See on juba sinu e-posti aadress.")
    if error:
        return render_template("account_email.html", person=person, sent=None, error=error), 400
    # Whether another account at the person's schools logs in with this address is not told
    # here, or anyone signed in could ask about any address: a taken address gets its link too
    # (the same work, the same page) and using the link refuses it.
    db = get_db()
    request_change(db, person, new)
    return render_template(
        "account_email.html",
        person=person,
        sent=new,
        error=None,
        hours=current_app.config["LINK_SECONDS"]["email"] // 3600,
    )


@bp.get("/account/email/confirm")
def confirm_page() -> Response:
    """The confirmation link's page: a button (a GET never uses the link)."""
    return link_page(
        None,
        _("Kinnita uus e-posti aadress"),
        _("Vajuta nuppu, et kinnitada see aadress oma Stuudium ID e-posti aadressiks."),
        _("Kinnita"),
        request.path,
    )


@bp.post("/account/email/confirm")
@limits.forms()
def confirm() -> Response:
    """Use the link: the new address becomes the person's e-mail everywhere."""
    check_csrf()
    again = ("/account/email", _("Muuda e-posti aadressi uuesti"))
    used = take_link(COUNTER, ("email",))
    db = get_db()
    person = db.get(Person, used.subject_id("person")) if used else None
    if used is None or person is None:
        db.rollback()
        return invalid_link(None, *again)
    new = str(used.data["email"])
    if names := taken_at(db, person.id, new):
        db.rollback()
        return error_page(_("E-posti aadressi ei saa muuta"), _taken(names), 409)
    live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    sid = live.sid if live and live.person_id == person.id else None
    # The way on: the school this browser came from, else the person's only school.
    schools = [a.school for a in linked_accounts(db, person.id)]
    only = schools[0] if len(schools) == 1 else None
    way = onward(session_school(db, sid) or only, signed_in=sid is not None)
    apply_change(db, person, new, sid)
    return private(
        error_page(
            _("E-posti aadress on muudetud"),
            _(
                "Sinu Stuudium ID e-posti aadress on nüüd %(email)s. Sellega logid sisse kõigis "
                "oma koolides; koolidele on muudatusest teada antud ja vanale aadressile saatsime "
                "teate.",
                email=new,
            ),
            200,
            way,
        )
    )
