"""HTTP endpoints of the provider: discovery, JWKS, authorize, token, userinfo, revoke,
introspect and RP-initiated logout (OIDC RP-Initiated Logout 1.0)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749.errors import InsecureTransportError
from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from idp.logout import Scope, end_sessions
from idp.metrics import GRANTS, TOKENS
from idp.models import Account, Client, Person
from idp.oidc import authorize as authz
from idp.oidc import interactions
from idp.oidc.claims import released
from idp.oidc.discovery import metadata
from idp.oidc.resource import (
    bearer_error,
    bearer_token,
    check_access_token,
    check_id_token_hint,
)
from idp.sessions import load as load_session
from idp.views.errors import error_page
from idp.views.logout_page import logged_out_page
from shared.db import get_db
from shared.security import check_csrf

bp = Blueprint("oidc", __name__)


def _server() -> Any:
    return current_app.extensions["oauth_server"]


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    """Provider metadata."""
    resp = jsonify(metadata(current_app.config["ISSUER"]))
    resp.headers["Cache-Control"] = "public, max-age=3600"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@bp.get("/jwks")
def jwks() -> Response:
    """Every published key: next, active and retiring."""
    resp = jsonify(current_app.extensions["keys"].ring(get_db()).jwks)
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    """The authorization endpoint."""
    try:
        return authz.authorize()
    except authz.PageError as exc:
        return _authorize_error_page(exc.code)


def _authorize_error_page(code: str) -> Any:
    if code == "invalid_client":
        return error_page(_("Tundmatu rakendus"), _(
            "Sisselogimist küsis rakendus, mida Stuudium ID ei tunne. Mine tagasi oma kooli "
            "Stuudiumi lehele ja proovi uuesti; kui viga kordub, anna sellest teada kooli "
            "IT-toele."), 400)
    return error_page(_("Vigane tagasisuunamise aadress"), _(
        "Sisselogimise päring ei tulnud koolilt, kelle aadress on Stuudium ID-s registreeritud, "
        "seega me sind sinna tagasi ei saada. Ava oma kooli Stuudiumi leht uuesti ja logi "
        "sealt sisse."), 400)


@bp.get("/authorize/resume")
def resume() -> Any:
    """Continue an authorization request after the person authenticated."""
    ix = request.args.get("ix", "")
    data = interactions.load(ix)
    if data is None or data.get("result") is None:
        return _sign_in_expired()
    auth_request = authz.restore(data["request"])
    session = load_session(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    if auth_request is None or session is None or session.sid != data["result"]["sid"] or (
            not interactions.resumed(ix, data)):
        return _sign_in_expired()
    return authz.decide(auth_request, fresh=True)


def _sign_in_expired() -> Any:
    return error_page(_("Sisselogimine aegus"), _(
        "Sisselogimise aeg sai läbi. Mine tagasi oma kooli Stuudiumi lehele ja logi uuesti "
        "sisse."), 400)


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


def _duplicated_form_param() -> str | None:
    for key in request.form:
        if len(request.form.getlist(key)) > 1:
            return key
    return None


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    resp = jsonify({"error": error, "error_description": description})
    resp.status_code = status
    return _no_store(resp)


@bp.post("/token")
def token() -> Response:
    """The token endpoint (authorization_code and refresh_token grants)."""
    dup = _duplicated_form_param()
    if dup:
        return _oauth_error("invalid_request", f"'{dup}' is repeated")
    try:
        resp = _server().create_token_response()
    except InsecureTransportError:
        return _oauth_error("invalid_request", "https is required")
    grant = request.form.get("grant_type", "")
    if resp.status_code == 200 and grant in GRANTS:
        TOKENS.labels(grant).inc()
    return _no_store(resp)


@bp.post("/revoke")
def revoke() -> Response:
    """RFC 7009 token revocation."""
    return _no_store(_server().create_endpoint_response("revocation"))


@bp.post("/introspect")
def introspect() -> Response:
    """RFC 7662 token introspection."""
    return _no_store(_server().create_endpoint_response("introspection"))


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """OIDC Core §5.3: the claims of the token's scope, for the token's school account."""
    claims = check_access_token(bearer_token() or "")
    if claims is None:
        return bearer_error("invalid_token", 401)
    db = get_db()
    row = db.execute(select(Account, Person).join(Person, Person.id == Account.person_id)
                     .where(Account.sub == claims["sub"])).first()
    if row is None or row[0].status != "active":
        return bearer_error("invalid_token", 401)
    account, person = row
    return _no_store(jsonify(released(person, account, claims["scope"], None)))


@bp.route("/logout", methods=["GET", "POST"])
def end_session() -> Any:
    """RP-initiated logout: redirect only to an exact registered URI, and only with a valid hint."""
    values = request.form if request.method == "POST" else request.args
    hint = check_id_token_hint(values.get("id_token_hint"))
    cookie = request.cookies.get(current_app.config["SSO_COOKIE_NAME"])
    session = load_session(cookie)
    target = values.get("post_logout_redirect_uri")
    client = None
    if hint is not None:
        client = get_db().scalar(select(Client).where(Client.client_id == hint["aud"]))
    if target is not None and (client is None or target not in client.post_logout_redirect_uris):
        target = None
    confirmed = request.method == "POST" and values.get("confirm") == "yes"
    if confirmed:
        check_csrf()
    hint_is_this_session = hint is not None and session is not None and hint.get(
        "sid") == session.sid
    if session is not None and not (confirmed or hint_is_this_session):
        return render_template("logout_confirm.html", values=dict(values.items()))
    ended = None
    if session is not None:
        ended = end_sessions(get_db(), Scope(session_ids=(session.sid,)), "logout")
    continue_to = None
    if target is not None and (hint is not None):
        state = values.get("state")
        continue_to = target + (("&" if "?" in target else "?") + urlencode({"state": state})
                                if state else "")
    return logged_out_page(ended, continue_to=continue_to)


def init_app(app: Any) -> None:
    """Register the provider."""
    from idp.oidc.server import create_server

    app.extensions["oauth_server"] = create_server(app)
    app.register_blueprint(bp)
