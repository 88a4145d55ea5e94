"""Error pages that say what happened and what to do next."""

from __future__ import annotations

from flask import Flask, Response, make_response, render_template
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException


def error_page(title: str, message: str, status: int) -> Response:
    """Render an error page for a person."""
    return make_response(render_template("error.html", title=title, message=message), status)


def init_app(app: Flask) -> None:
    """Render HTTP errors as pages."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 400 and exc.description == "csrf":
            return error_page(_("Vorm aegus"), _(
                "Lehe turvakontroll ei läinud läbi, sest vorm oli liiga kaua avatud või avati "
                "teises aknas. Laadi leht uuesti ja proovi veel kord."), 400)
        if status == 404:
            return error_page(_("Lehte ei leitud"), _(
                "Sellist lehte ei ole. Kontrolli aadressi või alusta oma kooli Stuudiumi "
                "avalehelt."), 404)
        if status in (413, 414):
            return error_page(_("Päring on liiga suur"), _(
                "Saadetud andmeid oli rohkem, kui me vastu võtame. Mine tagasi ja proovi "
                "uuesti."), status)
        if status == 405:
            return error_page(_("Lubamatu päring"), _(
                "Seda lehte ei saa nii avada. Alusta oma kooli Stuudiumi avalehelt."), 405)
        return error_page(_("Midagi läks valesti"), _(
            "Päringut ei õnnestunud täita. Proovi mõne aja pärast uuesti; kui viga kordub, "
            "anna sellest teada kooli IT-toele."), status)
