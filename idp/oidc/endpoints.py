"""HTTP endpoints of the provider: discovery, JWKS, authorize, token, userinfo, revoke,
introspect. It renders no page: an error the person must see is raised as authorize.PageError,
which views/errors renders; RP-initiated logout is a page (views/logout_page, end_session)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import InsecureTransportError
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from idp.metrics import GRANTS, TOKENS
from idp.models import Account, Person
from idp.oidc import authorize as authz
from idp.oidc.claims import released
from idp.oidc.discovery import metadata
from idp.oidc.resource import (
    bearer_error,
    bearer_token,
    check_access_token,
)
from idp.oidc.server import create_server
from idp.sso.sessions import load as load_session
from idp.store import interactions
from shared.db import get_db

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
    resp = jsonify(current_app.extensions["keys"].ring(get_db).jwks)
    resp.headers["Cache-Control"] = "public, max-age=300"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    """The authorization endpoint (an error the person must see is a PageError: views/)."""
    return authz.authorize()


@bp.get("/authorize/resume")
def resume() -> Any:
    """Continue an authorization request after the person authenticated."""
    ix = request.args.get("ix", "")
    data = interactions.load(ix)
    if data is None or data.get("result") is None:
        raise authz.PageError("sign_in_expired")
    auth_request = authz.restore(data["request"])
    session = load_session(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    if (
        auth_request is None
        or session is None
        or session.sid != data["result"]["sid"]
        or (not interactions.resumed(ix, data))
    ):
        raise authz.PageError("sign_in_expired")
    return authz.decide(auth_request, fresh=True)


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
    row = db.execute(
        select(Account, Person)
        .join(Person, Person.id == Account.person_id)
        .where(Account.sub == claims["sub"])
    ).first()
    if row is None or row[0].status != "active":
        return bearer_error("invalid_token", 401)
    account, person = row
    return _no_store(jsonify(released(person, account, claims["scope"], None)))


def init_app(app: Any) -> None:
    """Register the provider."""

    app.extensions["oauth_server"] = create_server(app)
    app.register_blueprint(bp)
