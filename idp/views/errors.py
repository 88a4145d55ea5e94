"""Error pages that say what happened and what to do next."""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, make_response, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from idp.models import Client, School
from idp.oidc.authorize import PageError
from idp.store import interactions
from idp.views.onward import Onward, browser_sid, onward
from shared import outage
from shared.db import get_db

log = logging.getLogger(__name__)


# Machine endpoints: the token endpoint and the other back-channel calls, the admin API.
API_PATHS = ("/token", "/revoke", "/introspect", "/userinfo", "/jwks", "/api/", "/.well-known/")


def error_page(
    title: str, message: str, status: int, way: Onward | None = None, restart: bool = False
) -> Response:
    """Render an error page for a person, with its way onward (the home when none is given;
    restart: the way starts a sign-in again)."""
    return make_response(
        render_template("error.html", title=title, message=message, onward=way, restart=restart),
        status,
    )


def interaction_school(ix: str | None) -> School | None:
    """The school whose client started the pending sign-in ix, while it is stored."""
    try:
        data = interactions.load(ix)
        if data is None:
            return None
        return get_db().scalar(
            select(School)
            .join(Client, Client.school_id == School.id)
            .where(Client.client_id == data["request"]["client_id"])
        )
    except (SQLAlchemyError, redis.RedisError):
        return None


def sign_in_expired(school: School | None = None) -> Response:
    """A sign-in that expired: start it again at the school when it is known (the interaction's
    client, or the login form's `school`), else the home's list of schools."""
    way = onward(school)
    if way.school is not None:
        message = _(
            "Sisselogimise aeg sai läbi: sisselogimise leht kehtib piiratud aja. Alusta "
            "sisselogimist kooli %(school)s Stuudiumis uuesti.",
            school=way.school.name,
        )
    else:
        message = _(
            "Sisselogimise aeg sai läbi: sisselogimise leht kehtib piiratud aja. Vali Stuudium "
            "ID avalehel oma kool ja logi uuesti sisse."
        )
    return error_page(_("Sisselogimine aegus"), message, 400, way, restart=True)


def init_app(app: Flask) -> None:
    """Render HTTP errors as pages."""

    def retry_page() -> Response:
        # Nothing was half done: logout commits in SQL before it touches Redis, so the person
        # may simply try again.
        return error_page(
            _("Teenus on ajutiselt kättesaamatu"),
            _(
                "Me ei saanud sinu päringut praegu täita ja midagi ei muutunud. Proovi mõne minuti "
                "pärast uuesti; kui sa tahtsid välja logida, vajuta uuesti väljalogimise "
                "nuppu."
            ),
            503,
        )

    # Clients of the protocol and the admin API get the OAuth error body instead of the page.
    outage.install(app, retry_page, API_PATHS)

    @app.errorhandler(PageError)
    def _authorization_error(exc: PageError) -> Response:
        if exc.code == "sign_in_expired":
            return sign_in_expired(interaction_school(request.args.get("ix")))
        if exc.code == "invalid_client":
            return error_page(
                _("Tundmatu rakendus"),
                _(
                    "Sisselogimist küsis rakendus, mida Stuudium ID ei tunne. Mine tagasi oma "
                    "kooli Stuudiumi lehele ja proovi uuesti; kui viga kordub, anna sellest teada "
                    "kooli IT-toele."
                ),
                400,
            )
        return error_page(
            _("Vigane tagasisuunamise aadress"),
            _(
                "Sisselogimise päring ei tulnud koolilt, kelle aadress on Stuudium ID-s "
                "registreeritud, seega me sind sinna tagasi ei saada. Ava oma kooli Stuudiumi leht "
                "uuesti ja logi sealt sisse."
            ),
            400,
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 400 and exc.description == "csrf":
            return error_page(
                _("Vorm aegus"),
                _(
                    "Lehe turvakontroll ei läinud läbi, sest vorm oli liiga kaua avatud või avati "
                    "teises aknas. Laadi leht uuesti ja proovi veel kord."
                ),
                400,
            )
        if status == 404:
            return error_page(
                _("Lehte ei leitud"),
                _(
                    "Sellist lehte ei ole. Kontrolli aadressi või alusta Stuudium ID avalehelt, "
                    "kust leiad oma kooli."
                ),
                404,
            )
        if status == 429:
            resp = error_page(
                _("Liiga palju päringuid"),
                _(
                    "Sellelt aadressilt tuli lühikese aja jooksul liiga palju päringuid. Oota "
                    "minut ja proovi siis uuesti."
                ),
                429,
            )
            resp.headers["Retry-After"] = "60"
            return resp
        if status in (413, 414):
            return error_page(
                _("Päring on liiga suur"),
                _(
                    "Saadetud andmeid oli rohkem, kui me vastu võtame. Mine tagasi ja proovi "
                    "uuesti."
                ),
                status,
            )
        if status == 405:
            # Typically a page that answered a form, opened again by its address: nothing
            # changed, and the way on is the school this browser came from.
            return error_page(
                _("Lubamatu päring"),
                _(
                    "Seda lehte ei saa aadressi kaudu avada: see avaneb ainult lehel oleva "
                    "nupuga. Midagi ei muutunud."
                ),
                405,
                onward(sid=browser_sid()),
            )
        return error_page(
            _("Midagi läks valesti"),
            _(
                "Päringut ei õnnestunud täita. Proovi mõne aja pärast uuesti; kui viga kordub, "
                "anna sellest teada kooli IT-toele."
            ),
            status,
        )
