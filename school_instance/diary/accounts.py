"""An admin's page of the school's accounts: disabling one ends all its sessions (at the IdP)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from school_instance import admin_api
from school_instance.diary.blueprint import bp
from school_instance.sso import page, refresh, role_required
from school_instance.tenancy import current
from shared.roles import role_names
from shared.security import check_csrf

ACTIONS = ("disable", "enable")


def _access_token() -> str | None:
    """The admin's own access token, refreshed first when it is about to expire."""
    data = refresh(current(), g.session_handle, g.user)
    return str(data["access_token"]) if data else None


def failure(exc: admin_api.AdminApiError, back: tuple[str, str] | None = None) -> Response:
    """A page that says why the IdP did not do it and what to do next."""
    back = back or (_("Kontode juurde"), url_for("diary.accounts"))
    if exc.status is None or exc.error == "not_json":
        return page(
            _("Stuudium ID ei vasta"),
            _(
                "Kontosid ei saanud praegu vaadata ega muuta, sest Stuudium ID ei vastanud. Proovi "
                "mõne minuti pärast uuesti."
            ),
            503,
            back,
        )
    if exc.status == 401:
        return page(
            _("Sinu sisselogimine on aegunud"),
            _(
                "Stuudium ID ei tunnistanud sinu sisselogimist enam kehtivaks. Logi uuesti sisse "
                "ja proovi siis uuesti."
            ),
            401,
            (_("Logi sisse"), url_for("sso.login")),
        )
    if exc.status == 403:
        return page(
            _("Sul ei ole õigust kontosid muuta"),
            _(
                "Stuudium ID andmetel ei ole sa selle kooli administraator. Kui see on viga, "
                "pöördu kooli juhtkonna poole."
            ),
            403,
            (_("Avalehele"), "/"),
        )
    if exc.status == 404:
        return page(
            _("Kontot ei leitud"),
            _("Sellist kontot selles koolis ei ole. Vali konto uuesti kontode nimekirjast."),
            404,
            back,
        )
    if exc.error == "own_account":
        return page(
            _("Oma kontot ei saa keelata"),
            _(
                "Administraator ei saa keelata omaenda kontot. Palu seda teha mõnel teisel "
                "administraatoril."
            ),
            409,
            back,
        )
    if exc.error == "email_in_use":
        return page(
            _("Kontot ei saa lubada"),
            _(
                "Selle konto e-posti aadressiga on koolis juba teine aktiivne konto. Keela enne "
                "see konto või palu inimesel e-posti aadress muuta."
            ),
            409,
            back,
        )
    return page(
        _("Midagi läks valesti"),
        _(
            "Stuudium ID ei täitnud päringut. Proovi mõne aja pärast uuesti; kui viga kordub, anna "
            "sellest teada kooli IT-toele."
        ),
        502,
        back,
    )


def _accounts_or_failure() -> list[dict[str, Any]] | Response:
    token = _access_token()
    if token is None:
        return redirect(url_for("sso.login", target_link_uri=url_for("diary.accounts")), 303)
    try:
        return admin_api.accounts(current(), token)
    except admin_api.AdminApiError as exc:
        return failure(exc)


@bp.get("/admin/accounts")
@role_required("admin")
def accounts() -> Any:
    """The school's accounts, each with a button to disable or enable it."""
    found = _accounts_or_failure()
    if isinstance(found, Response):
        return found
    return render_template("diary/accounts.html", accounts=found, roles=role_names())


@bp.get("/admin/accounts/<sub>/<action>")
@role_required("admin")
def confirm(sub: str, action: str) -> Any:
    """Say what disabling (or enabling) will do, and ask to confirm."""
    if action not in ACTIONS:
        abort(404)
    found = _accounts_or_failure()
    if isinstance(found, Response):
        return found
    account = next((a for a in found if a.get("sub") == sub), None)
    if account is None:
        return failure(admin_api.AdminApiError(404, "not_found"))
    return render_template("diary/account_confirm.html", account=account, action=action)


@bp.post("/admin/accounts/<sub>/<action>")
@role_required("admin")
def change(sub: str, action: str) -> Any:
    """Disable or enable the account at Stuudium ID, with this admin's own access token."""
    check_csrf()
    if action not in ACTIONS:
        abort(404)
    token = _access_token()
    if token is None:
        return redirect(url_for("sso.login", target_link_uri=url_for("diary.accounts")), 303)
    try:
        result = admin_api.set_status(current(), token, sub, action)
    except admin_api.AdminApiError as exc:
        return failure(exc)
    if action == "disable":
        flash(
            _("Konto on keelatud; kõik selle konto seansid on lõpetatud.")
            if result.get("changed")
            else _("Konto oli juba keelatud.")
        )
    else:
        flash(
            _("Konto on lubatud; sellega saab jälle sisse logida.")
            if result.get("changed")
            else _("Konto oli juba lubatud.")
        )
    return redirect(url_for("diary.accounts"), 303)
