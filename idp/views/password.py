"""Muuda parooli: the person sets a new password; every session ends and every school is told."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, render_template, request
from flask_babel import gettext as _

from idp.password_change import change_password, current_password_ok
from idp.passwords import MAX_LENGTH, Owner, reason, refusal
from idp.views.account import signed_in
from idp.views.logout_page import logged_out_page
from shared.db import get_db
from shared.security import check_csrf

bp = Blueprint("password", __name__)


def _form(error: str | None = None) -> Any:
    # Nothing typed is sent back: the form holds only passwords.
    return render_template("account_password.html", person=g.person, error=error,
                           min_length=current_app.config["PASSWORD_MIN_LENGTH"])


@bp.route("/account/password", methods=["GET", "POST"])
@signed_in
def change() -> Any:
    """Show the password form; on a good new password change it and end every session."""
    if request.method == "GET":
        return _form()
    check_csrf()
    person = g.person
    current = request.form.get("current_password", "")[:MAX_LENGTH]
    new = request.form.get("new_password", "")
    repeated = request.form.get("new_password_again", "")
    if person.password_hash is not None and not current_password_ok(person, current):
        return _form(_("Praegune parool on vale."))
    if new != repeated:
        return _form(_("Uus parool ja selle kordus ei ole samad."))
    min_length = current_app.config["PASSWORD_MIN_LENGTH"]
    code = refusal(new, Owner(person.given_name, person.family_name, person.email,
                              person.isikukood), min_length)
    if code is not None:
        return _form(reason(code, min_length))
    ended = change_password(get_db(), person, new)
    return logged_out_page(ended, heading=_("Parool on muudetud"), message=_(
        "Sinu uus parool on salvestatud. Turvalisuse huvides lõpetasime kõik sinu Stuudium ID "
        "seansid kõigis seadmetes ja koolides. Logi uuesti sisse oma kooli Stuudiumi lehel, "
        "kasutades uut parooli."))
