"""Error pages that say what happened and what to do next."""

from __future__ import annotations

import logging

from flask import Flask, Response, make_response, render_template
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from idp.oidc.authorize import PageError
from shared import outage

log = logging.getLogger(__name__)


# Machine endpoints: the token endpoint and the other back-channel calls, the admin API.
API_PATHS = ("/token", "/revoke", "/introspect", "/userinfo", "/jwks", "/api/", "/.well-known/")


def error_page(title: str, message: str, status: int) -> Response:
    """Render an error page for a person."""
    return make_response(render_template("error.html", title=title, message=message), status)


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
            return error_page(
                _("Sisselogimine aegus"),
                _(
                    "Sisselogimise aeg sai läbi. Mine tagasi oma kooli Stuudiumi lehele ja logi "
                    "uuesti sisse."
                ),
                400,
            )
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
                    "Sellist lehte ei ole. Kontrolli aadressi või alusta oma kooli Stuudiumi "
                    "avalehelt."
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
            return error_page(
                _("Lubamatu päring"),
                _("Seda lehte ei saa nii avada. Alusta oma kooli Stuudiumi avalehelt."),
                405,
            )
        return error_page(
            _("Midagi läks valesti"),
            _(
                "Päringut ei õnnestunud täita. Proovi mõne aja pärast uuesti; kui viga kordub, "
                "anna sellest teada kooli IT-toele."
            ),
            status,
        )
