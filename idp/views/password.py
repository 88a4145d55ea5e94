"""Muuda parooli: the person sets a new password; their other sessions end (every school there
is told) and this browser stays signed in under a new cookie secret."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, render_template, request, url_for
from flask_babel import gettext as _

from idp.people.password_change import change_password, current_password_ok
from idp.people.passwords import MAX_LENGTH, Owner, reason, refusal
from idp.store import limits
from idp.views.account import signed_in
from idp.views.login import set_sso_cookie
from idp.views.logout_page import logged_out_page
from idp.views.onward import named_school, onward
from shared.db import get_db
from shared.security import check_csrf

bp = Blueprint("password", __name__)


def _form(error: str | None = None) -> Any:
    # Nothing typed is sent back: the form holds only passwords. A person without a password
    # (signed in by a link) may skip setting one: the way onward is the school they came from.
    return render_template(
        "account_password.html",
        person=g.person,
        error=error,
        min_length=current_app.config["PASSWORD_MIN_LENGTH"],
        school=named_school(get_db()),
        onward=onward(sid=g.live_session.sid),
    )


@bp.route("/account/password", methods=["GET", "POST"])
@limits.forms()
@signed_in
def change() -> Any:
    """Show the password form; on a good new password change it and end the other sessions."""
    if request.method == "GET":
        return _form()
    check_csrf()
    person = g.person
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    repeated = request.form.get("new_password_again", "")
    min_length = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(new) > MAX_LENGTH:  # refused before any hashing or estimating
        return _form(reason("too_long", min_length))
    # Never truncated: a current password longer than any we accept is simply wrong.
    if person.password_hash is not None and (
        len(current) > MAX_LENGTH or not current_password_ok(person, current)
    ):
        return _form(_("Praegune parool on vale."))
    if new != repeated:
        return _form(_("Uus parool ja selle kordus ei ole samad."))
    code = refusal(
        new,
        Owner(person.given_name, person.family_name, person.email, person.isikukood),
        min_length,
    )
    if code is not None:
        return _form(reason(code, min_length))
    first = person.password_hash is None  # set after a login link: no sessions to review
    way = onward(sid=g.live_session.sid, signed_in=True)
    ended, secret = change_password(get_db(), person, new, g.live_session)
    texts = (
        {
            "heading": _("Parool on salvestatud"),
            "message": _(
                "Edaspidi saad sisse logida oma e-posti aadressi ja selle parooliga – ka siis, "
                "kui sisselogimise link on aegunud."
            ),
        }
        if first
        else {
            "heading": _("Parool on muudetud"),
            "message": _(
                "Sinu uus parool on salvestatud ja selles seadmes jääd sisse logituks. "
                "Turvalisuse huvides lõpetasime sinu Stuudium ID seansid kõigis teistes "
                "seadmetes; seal logi sisse uue parooliga."
            ),
            "back_to": url_for("account.sessions_page"),
        }
    )
    resp = logged_out_page(ended, clear_cookie=secret is None, way=way, **texts)
    if secret is not None:
        set_sso_cookie(resp, secret)
    return resp
