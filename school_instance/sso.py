"""Signing in through Stuudium ID: the code flow with PKCE, state and nonce (OIDC Core §3.1),
third-party-initiated login for jumps between schools (§4), logout, back-channel logout."""

from __future__ import annotations

import hmac
import json
import secrets
import time
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from school_instance import sessions
from school_instance.admin_api import tell_idp
from school_instance.provider import (
    IdTokenInvalid,
    Provider,
    post_token,
    provider,
    validate_id_token,
    verify_jwt,
)
from school_instance.tenancy import TenantInfo, current
from shared import i18n, security
from shared.db import autocommit_row
from shared.messages import BACKCHANNEL_EVENT, LOGOUT_TOKEN_TYP, STUUDIUM_SCOPE
from shared.security import check_csrf, sha256_hex

bp = Blueprint("sso", __name__, url_prefix="/auth")

SCOPE = f"openid profile email offline_access {STUUDIUM_SCOPE}"
ID_TOKEN_CLAIMS = json.dumps({"id_token": {"given_name": None, "family_name": None, "email": None}})
SILENT_RETRY_ERRORS = {
    "login_required",
    "interaction_required",
    "consent_required",
    "account_selection_required",
}


def _provider() -> Provider:
    return provider(current().issuer, current_app.config["IDP_TIMEOUT_SECONDS"])


# Authlib's protocol functions build the request bodies; they go out with post_token, since
# building an OAuth2Session (a requests.Session) per login cost more CPU than the rest of the
# exchange on the client side.
def _redeem_code(prov: Provider, tenant: TenantInfo, code: str, verifier: str) -> dict[str, Any]:
    """Exchange the code at the token endpoint (RFC 6749 §4.1.3 with the PKCE verifier)."""
    if not code:
        raise ValueError("no code")
    body = prepare_token_request(
        "authorization_code", code=code, redirect_uri=tenant.redirect_uri, code_verifier=verifier
    )
    resp = post_token(
        prov.endpoint("token_endpoint"),
        body,
        tenant.client_id,
        tenant.client_secret,
        current_app.config["IDP_TIMEOUT_SECONDS"],
    )
    if resp.status != 200:
        raise ValueError(f"the token endpoint answered {resp.status}")
    token = resp.body
    if not isinstance(token, dict) or not isinstance(token.get("access_token"), str):
        raise ValueError("no access token")  # the session lives by its tokens
    return token


def page(title: str, message: str, status: int, action: tuple[str, str] | None = None) -> Response:
    """An error page for a person, with what to do next."""
    return make_response(
        render_template("message.html", title=title, message=message, action=action), status
    )


def _safe_target(target: str | None) -> str:
    """Only a path on this school's own origin may be a landing target."""
    if not target:
        return "/"
    tenant = current()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        base = urlsplit(tenant.base_url)
        if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
            return "/"
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path + (f"?{parts.query}" if parts.query else "")


def _binding_cookie(tenant: TenantInfo) -> str:
    return f"{tenant.cookie_name}_auth"


def start_login(target: str, silent: bool) -> Response:
    """Redirect to the IdP's authorization endpoint with PKCE S256, state and nonce.

    The state stays in Redis; a random value in a per-school cookie binds it to this browser,
    so a callback URL someone else started cannot sign this browser in (RFC 9700 §4.7).
    """
    tenant = current()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    binding = request.cookies.get(_binding_cookie(tenant)) or ""
    if len(binding) != 43:
        binding = secrets.token_urlsafe(32)
    sessions.put_state(
        tenant,
        state,
        {
            "nonce": nonce,
            "verifier": verifier,
            "target": target,
            "silent": silent,
            "binding": sha256_hex(binding),
        },
    )
    extra = {
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        "claims": ID_TOKEN_CLAIMS,
        "ui_locales": i18n.current(),
    }
    if silent:
        extra["prompt"] = "none"
    endpoint = _provider().endpoint("authorization_endpoint")
    query = urlencode(
        {
            "response_type": "code",
            "client_id": tenant.client_id,
            "redirect_uri": tenant.redirect_uri,
            "scope": SCOPE,
            "state": state,
            **extra,
        }
    )
    # RFC 6749 §3.1: an endpoint's own query component is kept.
    resp = redirect(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", 303)
    resp.set_cookie(
        _binding_cookie(tenant),
        binding,
        httponly=True,
        samesite="Lax",
        path="/auth/",
        secure=tenant.base_url.startswith("https://"),
        max_age=current_app.config["OAUTH_STATE_TTL_SECONDS"],
    )
    return resp


@bp.get("/login")
def login() -> Response:
    """Start signing in; with `iss` (a jump from another school) try silently first."""
    iss = request.args.get("iss")
    if iss is not None and iss.rstrip("/") != current().issuer:
        return page(
            _("Tundmatu sisselogimise teenus"),
            _(
                "Sisselogimist alustati teenusest, mida see kool ei usalda. Logi sisse kooli "
                "avalehelt."
            ),
            400,
            (_("Avalehele"), "/"),
        )
    target = _safe_target(request.args.get("target_link_uri"))
    return start_login(target, silent=iss is not None)


@bp.get("/callback")
def callback() -> Response:
    """Finish signing in: check state, exchange the code, validate the ID token."""
    tenant = current()
    stored = sessions.take_state(tenant, request.args.get("state"))
    binding = request.cookies.get(_binding_cookie(tenant)) or ""
    if stored is None or not hmac.compare_digest(stored.get("binding", ""), sha256_hex(binding)):
        return page(
            _("Sisselogimine aegus"),
            _("See sisselogimise link on aegunud või juba kasutatud. Alusta sisselogimist uuesti."),
            400,
            (_("Logi sisse"), url_for("sso.login")),
        )
    iss = request.args.get("iss")
    if iss is not None and iss != tenant.issuer:
        return page(
            _("Sisselogimine ei õnnestunud"),
            _("Vastus tuli teenuselt, mida see kool ei usalda. Alusta sisselogimist uuesti."),
            400,
            (_("Logi sisse"), url_for("sso.login")),
        )
    error = request.args.get("error")
    if error:
        if stored["silent"] and error in SILENT_RETRY_ERRORS:
            return start_login(stored["target"], silent=False)
        return page(
            _("Automaatne sisselogimine ei õnnestunud")
            if stored["silent"]
            else _("Sisselogimine ei õnnestunud"),
            _(
                "Stuudium ID ei saanud sind selles koolis sisse logida. Proovi uuesti; kui see ei "
                "aita, logi sisse kooli avalehelt."
            ),
            400,
            (_("Logi sisse"), url_for("sso.login")),
        )
    prov = _provider()
    try:
        token = _redeem_code(prov, tenant, request.args.get("code", ""), stored["verifier"])
        claims = validate_id_token(
            prov,
            token.get("id_token", ""),
            client_id=tenant.client_id,
            nonce=stored["nonce"],
            leeway=current_app.config["ID_TOKEN_LEEWAY_SECONDS"],
            timeout=current_app.config["IDP_TIMEOUT_SECONDS"],
        )
    except (IdTokenInvalid, ValueError, OSError):  # the IdP refused the code
        return page(
            _("Sisselogimine ei õnnestunud"),
            _("Sisselogimist ei õnnestunud kinnitada. Alusta sisselogimist uuesti."),
            400,
            (_("Logi sisse"), url_for("sso.login")),
        )
    member_id = remember_member(tenant, claims)
    data = _session_data(claims, token, member_id)
    # A language chosen here before signing in becomes the person's (the cookie is spent).
    chosen = i18n.visitor_choice()
    if chosen is not None and chosen != data["locale"]:
        data["locale"] = chosen
        tell_idp(tenant, data["access_token"], chosen)
    cookie = sessions.create(tenant, data)
    resp = redirect(stored["target"], 303)
    if chosen is not None:
        resp.delete_cookie(i18n.COOKIE)
    resp.set_cookie(
        tenant.cookie_name,
        cookie,
        httponly=True,
        samesite="Lax",
        path="/",
        secure=tenant.base_url.startswith("https://"),
        max_age=current_app.config["SESSION_MAX_SECONDS"],
    )
    return resp


def _session_data(claims: dict[str, Any], token: dict[str, Any], member_id: int) -> dict[str, Any]:
    return {
        "sid": claims["sid"],
        "sub": claims["sub"],
        "member_id": member_id,
        "roles": claims.get("roles", []),
        "schools": claims.get("schools", []),
        "name": f"{claims.get('given_name', '')} {claims.get('family_name', '')}".strip(),
        "locale": claims.get("locale"),
        "id_token": token["id_token"],
        "access_token": token["access_token"],
        "access_exp": int(time.time()) + int(token.get("expires_in", 300)),
        "refresh_token": token.get("refresh_token"),
    }


# Written once for both databases and run in autocommit (shared.db.autocommit_row): every
# login runs them, and no ORM unit of work belongs on that path.
_MEMBER_FIELDS = ("given_name", "family_name", "email", "roles")
_FIND_MEMBER = (
    "SELECT id, given_name, family_name, email, roles FROM diary_member"
    " WHERE tenant_id = :tenant_id AND sub = :sub"
)
_INSERT_MEMBER = (
    "INSERT INTO diary_member (tenant_id, sub, version, given_name, family_name, email, roles)"
    " VALUES (:tenant_id, :sub, 0, :given_name, :family_name, :email, :roles) RETURNING id"
)
# Only the changed fields are written (a person-changed event may be writing the others).
_UPDATE_MEMBER = (
    "UPDATE diary_member SET"
    " given_name = CASE WHEN :set_given_name THEN :given_name ELSE given_name END,"
    " family_name = CASE WHEN :set_family_name THEN :family_name ELSE family_name END,"
    " email = CASE WHEN :set_email THEN :email ELSE email END,"
    " roles = CASE WHEN :set_roles THEN :roles ELSE roles END"
    " WHERE id = :member_id"
)


def remember_member(tenant: TenantInfo, claims: dict[str, Any]) -> int:
    """Keep the local copy of the person up to date with what the IdP says; return its id.

    A returning person whose data did not change costs one SELECT: the row is written only
    when something changed; each statement is its own transaction (autocommit).
    """
    found = autocommit_row(_FIND_MEMBER, {"tenant_id": tenant.id, "sub": claims["sub"]})
    old: dict[str, Any] = {}
    if found is not None:
        old = dict(zip(("id", *_MEMBER_FIELDS), found, strict=True))
        if isinstance(old["roles"], str):  # SQLite answers the JSON column as its text
            old["roles"] = json.loads(old["roles"])
    new = {
        "given_name": claims.get("given_name") or old.get("given_name") or "",
        "family_name": claims.get("family_name") or old.get("family_name") or "",
        "email": claims.get("email") or old.get("email"),
        "roles": list(claims.get("roles") or old.get("roles") or []),
    }
    if not old:
        params = {"tenant_id": tenant.id, "sub": claims["sub"], **new}
        inserted = autocommit_row(_INSERT_MEMBER, _json_roles(params), writes=True)
        assert inserted is not None  # RETURNING answers the inserted row
        return int(inserted[0])
    changed = {k: v for k, v in new.items() if old[k] != v}
    if changed:
        params = {f"set_{name}": name in changed for name in _MEMBER_FIELDS}
        params |= {name: changed.get(name) for name in _MEMBER_FIELDS}
        autocommit_row(_UPDATE_MEMBER, _json_roles({**params, "member_id": old["id"]}), writes=True)
    return int(old["id"])


def _json_roles(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters with the roles serialised for the JSON column (None stays NULL)."""
    roles = params.get("roles")
    return {**params, "roles": None if roles is None else json.dumps(roles)}


def refresh(tenant: TenantInfo, handle: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """Refresh before the access token expires; a refused refresh ends the local session."""
    margin = current_app.config["REFRESH_MARGIN_SECONDS"]
    if data["access_exp"] - margin > time.time():
        return data
    if not sessions.lock(tenant, handle):
        return data if data["access_exp"] > time.time() else None
    try:
        prov = _provider()
        resp = post_token(
            prov.endpoint("token_endpoint"),
            urlencode(
                {"grant_type": "refresh_token", "refresh_token": data.get("refresh_token") or ""}
            ),
            tenant.client_id,
            tenant.client_secret,
            current_app.config["IDP_TIMEOUT_SECONDS"],
        )
        if resp.status != 200:
            sessions.delete(tenant, handle)
            return None
        token = resp.body
        if not isinstance(token, dict) or not isinstance(token.get("access_token"), str):
            raise ValueError("no access token")
        claims = validate_id_token(
            prov,
            token.get("id_token", ""),
            client_id=tenant.client_id,
            nonce=None,
            leeway=current_app.config["ID_TOKEN_LEEWAY_SECONDS"],
            timeout=current_app.config["IDP_TIMEOUT_SECONDS"],
        )
        if claims["sub"] != data["sub"]:
            sessions.delete(tenant, handle)
            return None
        data = {
            **data,
            **_session_data(claims, token, data["member_id"]),
            "name": data["name"],
            "schools": claims.get("schools", data["schools"]),
        }
        sessions.save(tenant, handle, data)
        return data
    except (OSError, ValueError, IdTokenInvalid):
        return data if data["access_exp"] > time.time() else None
    finally:
        sessions.unlock(tenant, handle)


def load_session() -> None:
    """Find the signed-in person of this request, refreshing tokens when due."""
    g.user = None
    tenant = g.get("tenant")
    if tenant is None:
        return
    found = sessions.load(tenant, request.cookies.get(tenant.cookie_name))
    if found is None:
        return
    handle, data = found
    fresh = refresh(tenant, handle, data)
    if fresh is not None:
        g.user = fresh
        g.session_handle = handle


def login_required(view: Any) -> Any:
    """Send a visitor without a session to sign in, coming back to this page."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(
                url_for("sso.login", target_link_uri=request.full_path.rstrip("?")), 303
            )
        return view(*args, **kwargs)

    return wrapped


def role_required(*roles: str) -> Any:
    """Allow only people with one of these roles at this school."""

    def decorator(view: Any) -> Any:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not set(roles) & set(g.user["roles"]):
                return page(
                    _("Sul ei ole sellele lehele ligipääsu"),
                    _("See leht on mõeldud teise rolliga kasutajatele."),
                    403,
                    (_("Avalehele"), "/"),
                )
            return view(*args, **kwargs)

        return wrapped

    return decorator


@bp.post("/logout")
def logout() -> Response:
    """End the local session and go to the IdP to log out of every school. The profile page's
    button sends the form's token; the account menu's, on every page (error pages too, which
    set no cookie), sends none and is checked like the language switch: same origin only."""
    if request.form.get("csrf_token") is None:
        i18n.check_same_origin()
    else:
        check_csrf()
    tenant = current()
    hint = g.user["id_token"] if g.get("user") else None
    if g.get("session_handle"):
        sessions.delete(tenant, g.session_handle)
    params = {
        "post_logout_redirect_uri": f"{tenant.base_url}/auth/logged-out",
        "client_id": tenant.client_id,
        "state": secrets.token_urlsafe(12),
    }
    if hint:
        params["id_token_hint"] = hint
    resp = redirect(f"{_provider().endpoint('end_session_endpoint')}?{urlencode(params)}", 303)
    resp.delete_cookie(tenant.cookie_name, path="/")
    return resp


@bp.get("/logged-out")
def logged_out() -> Response:
    """Back from the IdP after logging out."""
    return page(
        _("Oled välja logitud"),
        _("Oled kõigist koolidest välja logitud. Kui kasutad ühist arvutit, sulge ka brauser."),
        200,
        (_("Logi uuesti sisse"), url_for("sso.login")),
    )


LOGOUT_EVENT = BACKCHANNEL_EVENT


@bp.post("/backchannel-logout")
def backchannel_logout() -> Response:
    """Back-Channel Logout 1.0 §2.6: validate the logout token, end the matching sessions."""
    tenant = current()
    token = request.form.get("logout_token", "")
    try:
        claims = _logout_claims(tenant, token)
    except (IdTokenInvalid, ValueError, KeyError, TypeError):
        return _no_store(Response('{"error":"invalid_request"}', 400, mimetype="application/json"))
    except Exception:  # an internal failure answers 503 so that the IdP retries
        current_app.logger.exception("back-channel logout failed")
        return _no_store(Response("", 503))
    if claims.get("sid"):
        sessions.delete_by_sid(tenant, claims["sid"])
    else:
        sessions.delete_by_sub(tenant, claims["sub"])
    return _no_store(Response("", 200))


def idp_token_claims(tenant: TenantInfo, token: str, typ: str) -> dict[str, Any]:
    """Verify a token the IdP sent this school (logout token, security event): signature (the
    JWKS fetched again on an unknown kid), typ, iss, aud = this school, iat not in the future."""

    if not token or len(token) > 8192:
        raise IdTokenInvalid("missing")
    prov = _provider()
    try:
        decoded = _verify(prov, token)
    except JoseError as exc:
        raise IdTokenInvalid("signature") from exc
    if decoded.header.get("typ") != typ:
        raise IdTokenInvalid("type")
    claims = dict(decoded.claims)
    aud = claims.get("aud")
    if claims.get("iss") != tenant.issuer or tenant.client_id not in (
        aud if isinstance(aud, list) else [aud]
    ):
        raise IdTokenInvalid("iss/aud")
    if (
        not isinstance(claims.get("iat"), int)
        or claims["iat"] - current_app.config["ID_TOKEN_LEEWAY_SECONDS"] > time.time()
    ):
        raise IdTokenInvalid("iat")
    return claims


def claim_jti(tenant: TenantInfo, claims: dict[str, Any]) -> None:
    """Accept each token once per school (the replay store is keyed by tenant)."""
    jti = str(claims.get("jti") or "")
    if not jti or not sessions.claim_once(tenant, jti, 600):
        raise IdTokenInvalid("replay")


def _logout_claims(tenant: TenantInfo, token: str) -> dict[str, Any]:
    claims = idp_token_claims(tenant, token, LOGOUT_TOKEN_TYP)
    leeway = current_app.config["ID_TOKEN_LEEWAY_SECONDS"]
    if not isinstance(claims.get("exp"), int) or claims["exp"] + leeway < time.time():
        raise IdTokenInvalid("exp")
    if LOGOUT_EVENT not in (claims.get("events") or {}) or "nonce" in claims:
        raise IdTokenInvalid("events/nonce")
    if not claims.get("sid") and not claims.get("sub"):
        raise IdTokenInvalid("sid/sub")
    claim_jti(tenant, claims)
    return claims


def _verify(prov: Provider, token: str) -> Any:

    return verify_jwt(prov, token, ["ES256", "RS256"], current_app.config["IDP_TIMEOUT_SECONDS"])


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/frontchannel-logout")
def frontchannel_logout() -> Response:
    """Front-Channel Logout 1.0 §2: the IdP's logout page frames this with iss and sid."""
    tenant = current()
    iss, sid = request.args.get("iss"), request.args.get("sid", "")
    issuer = urlsplit(tenant.issuer)
    ancestors = f"{issuer.scheme}://{issuer.netloc}"
    if iss != tenant.issuer or not sid or len(sid) > 64:
        resp = Response("", 400)
    else:
        sessions.delete_by_sid(tenant, sid)
        resp = Response("<!doctype html><title>logout</title>", 200, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = security.content_security_policy(ancestors=ancestors)
    return resp
