"""eID login pages: start at the upstream with the chosen method, and come back to finish the
pending authorization request as the password login does."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from idp.eid import client
from idp.eid.binding import apply_verified_data, confirm_code, find_account
from idp.metrics import LOGINS
from idp.people.proofing import NoAnchoredAccount, ProofingError
from idp.sso import sessions
from idp.sso.sessions import SessionRefused
from idp.store import batch, limits
from idp.store import eid as eid_pending
from idp.views.errors import error_page
from idp.views.link import eid_proof, open_for_eid
from idp.views.login import _interaction_or_error, _school, _school_id, finish_login
from shared.db import get_db
from shared.security import check_csrf, sha256_hex

log = logging.getLogger(__name__)
bp = Blueprint("eid", __name__, url_prefix="/eid")
BINDING_COOKIE = "stuudium_idp_eid"


@bp.post("/start")
@limits.forms()
def start() -> Any:
    """Send the browser to the upstream with the chosen method (scope), state, nonce and PKCE."""
    check_csrf()
    method = request.form.get("method", "")
    if request.form.get("attempt"):
        return _start_link_proof(request.form["attempt"], method)
    if request.form.get("confirm_code"):
        return _start_code_confirmation(method)
    ix = request.form.get("ix", "")
    data, failure = _interaction_or_error(ix)
    if data is None:
        return failure
    if not client.enabled():
        return _unavailable(ix)
    if method not in client.METHODS:
        return _refused(ix)
    return _to_upstream(method, {"ix": ix}, lambda: _unavailable(ix))


def _start_link_proof(raw: str, method: str) -> Response:
    """eID as the way to prove the other account inside a link attempt of this session."""

    if open_for_eid(raw) is None or method not in client.METHODS or not client.enabled():
        return _link_refused()
    return _to_upstream(method, {"attempt": raw}, _link_refused)


def _start_code_confirmation(method: str) -> Response:
    """eID from a signed-in session, to confirm the code the person typed in an application."""
    live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    if live is None or method not in client.METHODS or not client.enabled():
        return _confirm_refused()
    return _to_upstream(method, {"confirm_sid": live.sid}, _confirm_refused)


def _to_upstream(
    method: str, purpose: dict[str, str], unreachable: Callable[[], Response]
) -> Response:
    """Begin at the upstream, remember the pending request and send the browser there; when
    the upstream cannot be reached, the page unreachable() makes."""
    try:
        pending, url = client.begin(method, str(get_locale() or "et"))
    except client.EidError as exc:
        log.warning("eID start failed: %s", exc)
        return unreachable()
    # The state is bound to this browser (a cookie only it has) and to what it finishes: the
    # pending interaction, or a link attempt.
    binding = secrets.token_urlsafe(32)
    eid_pending.remember(
        sha256_hex(pending.state),
        {
            **purpose,
            "nonce": pending.nonce,
            "verifier": pending.verifier,
            "method": method,
            "binding": sha256_hex(binding),
        },
        current_app.config["INTERACTION_TTL_SECONDS"],
    )
    resp = redirect(url, 303)
    resp.set_cookie(
        BINDING_COOKIE,
        binding,
        max_age=current_app.config["INTERACTION_TTL_SECONDS"],
        path="/eid/",
        httponly=True,
        samesite="Lax",
        secure=current_app.config["ISSUER"].startswith("https://"),
    )
    return resp


def _take_pending(state: str) -> dict[str, Any] | None:
    """Read and delete the pending upstream request atomically: each state is used once."""
    if not state or len(state) > 200:
        return None
    return eid_pending.take(sha256_hex(state))


@bp.get("/callback")
def callback() -> Any:
    """Check the upstream's answer, find the person's account at the school, sign them in."""
    pending = _take_pending(request.args.get("state", ""))
    binding = request.cookies.get(BINDING_COOKIE, "")
    if pending is None or not secrets.compare_digest(sha256_hex(binding), pending["binding"]):
        return _expired()
    if "attempt" in pending:
        return _finish_link_proof(pending)
    if "confirm_sid" in pending:
        return _finish_code_confirmation(pending)
    ix = pending["ix"]
    data, failure = _interaction_or_error(ix)
    if data is None:
        return failure
    if request.args.get("error") or not request.args.get("code"):
        # The person cancelled at the upstream, or it could not authenticate them.
        LOGINS.labels("eid", "cancelled").inc()
        return _page("eid_error.html", ix, 200, cancelled=True)
    try:
        identity = client.exchange(
            client.Pending(
                state="",
                nonce=pending["nonce"],
                verifier=pending["verifier"],
                method=pending["method"],
            ),
            request.args["code"],
        )
    except client.EidError as exc:
        log.warning("eID answer refused: %s", exc)  # the reason names no person
        LOGINS.labels("eid", "refused").inc()
        return _refused(ix)
    db = get_db()
    school_id = _school_id(data)
    try:
        if school_id is None:
            raise NoAnchoredAccount()
        account = find_account(db, school_id, identity, _controlling_person())
    except ProofingError as exc:
        LOGINS.labels("eid", exc.error).inc()
        return _not_bound(exc, ix)
    LOGINS.labels("eid", "ok").inc()
    apply_verified_data(db, account.person_id, identity, actor=f"eid:{account.sub}")
    pipe = batch()
    try:
        resp = finish_login(
            db, ix, data, account.person_id, account.id, identity.amr, identity.acr, pipe
        )
    except SessionRefused:  # the account was disabled or moved just now
        db.rollback()
        return _not_bound(NoAnchoredAccount(), ix)
    resp.delete_cookie(BINDING_COOKIE, path="/eid/")
    return resp


def _controlling_person() -> int | None:
    """The person this browser is already signed in as (password, link or eID): an eID login
    from that session may confirm the code they typed in their application."""
    live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    return live.person_id if live is not None else None


def _not_bound(exc: ProofingError, ix: str) -> Response:
    """No account for this eID at the school: the ways forward, or who corrects the records."""
    if isinstance(exc, NoAnchoredAccount):
        return _page("no_account.html", ix, exc.status, eid=True)
    return _page("eid_records_differ.html", ix, exc.status, reason=exc.error)


def _finish_link_proof(pending: dict[str, Any]) -> Response:
    """The upstream's answer inside a link attempt: a proof of the other account, no session."""

    identity = _upstream_identity(pending)
    if identity is None:
        return _link_refused()
    resp = current_app.make_response(eid_proof(pending["attempt"], identity))
    resp.delete_cookie(BINDING_COOKIE, path="/eid/")
    return resp


def _upstream_identity(pending: dict[str, Any]) -> client.EidIdentity | None:
    """The upstream's checked answer, or None (cancelled or refused; logged without names)."""
    if request.args.get("error") or not request.args.get("code"):
        return None
    try:
        return client.exchange(
            client.Pending(
                state="",
                nonce=pending["nonce"],
                verifier=pending["verifier"],
                method=pending["method"],
            ),
            request.args["code"],
        )
    except client.EidError as exc:
        log.warning("eID answer refused: %s", exc)
        return None


def _finish_code_confirmation(pending: dict[str, Any]) -> Response:
    """The session that started it is still this browser's and its person has the eID's code
    and names: the code becomes eID-verified (an anchor)."""
    live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    identity = _upstream_identity(pending)
    if live is None or live.sid != pending["confirm_sid"] or identity is None:
        return _confirm_refused()
    db = get_db()
    if not confirm_code(db, live.person_id, identity):
        db.rollback()
        return _confirm_refused(mismatch=True)
    resp = current_app.make_response(
        render_template(
            "link_done.html",
            heading=_("Isikukood on kinnitatud"),
            message=_(
                "Nüüdsest saad oma koolidesse sisse logida ka ID-kaardi, Mobiil-ID või Smart-ID-ga."
            ),
            accounts=[],
            back=url_for("account.overview"),
            back_label=_("Tagasi Stuudium ID lehele"),
        )
    )
    resp.delete_cookie(BINDING_COOKIE, path="/eid/")
    return resp


def _confirm_refused(mismatch: bool = False) -> Response:
    message = (
        _(
            "eID järgi on sinu isikukood või nimi teine kui Stuudium ID-s, seega me seda ei "
            "kinnitanud. Kui isikukood on valesti kirjas, pöördu kooli administraatori poole."
        )
        if mismatch
        else _(
            "Isikukoodi ei saanud kinnitada ja midagi ei muutunud. Ava oma Stuudium ID leht ja "
            "proovi uuesti."
        )
    )
    resp = current_app.make_response(
        (
            render_template(
                "link_done.html",
                heading=_("Isikukoodi ei kinnitatud"),
                message=message,
                accounts=[],
                back=url_for("account.overview"),
                back_label=_("Tagasi Stuudium ID lehele"),
            ),
            400,
        )
    )
    resp.delete_cookie(BINDING_COOKIE, path="/eid/")
    return resp


def _link_refused() -> Response:
    resp = error_page(
        _("eID-ga kinnitamine ei õnnestunud"),
        _(
            "Kontot ei saanud eID-ga kinnitada ja midagi ei seotud. Alusta sidumist uuesti oma "
            "kooli Stuudiumi profiililehelt („Seo oma konto teise kooliga“)."
        ),
        400,
    )
    resp.delete_cookie(BINDING_COOKIE, path="/eid/")
    return resp


def _page(template: str, ix: str, status: int, **extra: Any) -> Response:
    data, _failure = _interaction_or_error(ix)
    school = _school(data) if data else None
    resp = current_app.make_response(
        (render_template(template, ix=ix, school=school, **extra), status)
    )
    resp.delete_cookie(BINDING_COOKIE, path="/eid/")
    return resp


def _refused(ix: str) -> Response:
    return _page("eid_error.html", ix, 400, cancelled=False)


def _unavailable(ix: str) -> Response:
    return _page("eid_error.html", ix, 503, unavailable=True)


def _expired() -> Response:
    return error_page(
        _("Sisselogimine aegus"),
        _(
            "Sisselogimist ei saanud lõpetada: see aegus või alustati teises brauseris. Mine "
            "tagasi oma kooli Stuudiumi lehele ja logi uuesti sisse."
        ),
        400,
    )


def init_app(app: Flask) -> None:
    """Register the eID pages and tell the templates whether eID is offered."""
    app.register_blueprint(bp)
    app.jinja_env.globals["eid_methods"] = lambda: (
        [("idcard", _("ID-kaart")), ("mid", _("Mobiil-ID")), ("smartid", _("Smart-ID"))]
        if client.enabled()
        else []
    )
