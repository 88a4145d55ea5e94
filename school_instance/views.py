"""Pages common to every role: the front page, the profile, errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, g, redirect, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from school_instance import bar, sessions
from school_instance.admin_api import tell_idp
from school_instance.diary.views import bp as diary_bp
from school_instance.diary.views import dashboard
from school_instance.sso import login_required, page
from school_instance.tenancy import current
from shared import i18n, outage

bp = Blueprint("main", __name__)


@bp.get("/")
def home() -> Any:
    """The front page: sign-in for visitors, the diary for the signed-in."""
    if g.get("user") is None:
        return render_template("landing.html")

    return dashboard()


@bp.get("/profile")
@login_required
def profile() -> Any:
    """Your profile at this school: your linked schools, the way to link another one, and to
    your Stuudium ID sessions and password."""
    tenant = current()
    link = urlencode({"school": tenant.slug})
    return render_template(
        "profile.html",
        account_url=f"{tenant.issuer}/account",
        link_url=f"{tenant.issuer}/link/start?{link}",
    )


@bp.post("/locale")
def switch_locale() -> Response:
    """The language switch: a visitor's choice stays in this browser until they sign in; a
    signed-in person's goes into the session at once and to Stuudium ID, which keeps it as the
    person's language and tells their other schools."""
    i18n.check_same_origin()
    locale = i18n.supported(request.form.get("locale")) or i18n.DEFAULT
    back = redirect(i18n.local_path(request.form.get("next")), 303)
    user = g.get("user")
    if user is None:
        return i18n.remember_choice(back, locale)
    if user.get("locale") != locale:
        user["locale"] = locale
        sessions.save(current(), g.session_handle, user)
        tell_idp(current(), user["access_token"], locale)
    return back


def init_app(app: Flask) -> None:
    """Register pages, template helpers and error pages."""

    app.register_blueprint(bp)
    app.register_blueprint(diary_bp)
    bar.init_app(app)
    app.jinja_env.globals["tenant"] = lambda: g.get("tenant")
    # The school's own words (its name, lessons, news) are in its language, whatever the
    # page's: marked so that a screen reader reads them as that language.
    app.jinja_env.globals["content_lang"] = lambda: (
        str(g.tenant.default_locale) if g.get("tenant") is not None else i18n.DEFAULT
    )

    def retry_page() -> Response:
        return page(
            _("Teenus on ajutiselt kättesaamatu"),
            _(
                "Me ei saanud sinu päringut praegu täita ja midagi ei muutunud. Proovi mõne minuti "
                "pärast uuesti."
            ),
            503,
            (_("Proovi uuesti"), request.full_path if request.method == "GET" else "/"),
        )

    # The IdP's calls (back-channel logout, sync events) get the OAuth error body.
    outage.install(app, retry_page, ("/auth/backchannel-logout", "/auth/events", "/api/"))

    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 404:
            return page(
                _("Lehte ei leitud"),
                _("Sellist lehte selles koolis ei ole. Alusta kooli avalehelt."),
                404,
                (_("Avalehele"), "/") if g.get("tenant") else None,
            )
        if status == 400 and exc.description == "csrf":
            return page(
                _("Vorm aegus"),
                _("Lehe turvakontroll ei läinud läbi. Laadi leht uuesti ja proovi veel kord."),
                400,
                (_("Avalehele"), "/"),
            )
        return page(
            _("Midagi läks valesti"),
            _("Päringut ei õnnestunud täita. Proovi mõne aja pärast uuesti."),
            status,
            (_("Avalehele"), "/") if g.get("tenant") else None,
        )
