"""The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): one check per function.

Errors found before the client and redirect_uri are trusted are shown as a page and never
redirected; later errors go back to the exact registered redirect_uri with state and iss.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlencode

from flask import current_app, redirect, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from idp.metrics import SSO_JUMPS
from idp.oidc import assurance
from idp.oidc.claims import normalise_scope, parse_claims_request
from idp.oidc.clients import RelyingParty, find_client
from idp.oidc.resource import check_id_token_hint
from idp.sso.sessions import LiveSession
from idp.sso.sessions import load as load_session
from idp.store import codes, interactions
from shared.db import autocommit_row

CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
PROMPTS = {"none", "login", "consent", "select_account"}
MAX_VALUE = 2048


class PageError(Exception):
    """An authorization error shown to the person (the redirect target cannot be trusted, or
    the sign-in expired): code is invalid_client, invalid_redirect_uri or sign_in_expired;
    views/errors renders the page."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class RedirectError(Exception):
    """An authorization error returned to the client's redirect_uri."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(error)
        self.error = error
        self.description = description


@dataclass
class AuthorizationRequest:
    """A validated authorization request."""

    client: RelyingParty
    redirect_uri: str
    params: dict[str, Any]

    @property
    def state(self) -> str | None:
        """The client's state, echoed back."""
        return self.params.get("state")


def _params() -> MultiDict[str, str]:
    return request.form if request.method == "POST" else request.args


def check_client_and_redirect(values: MultiDict[str, str]) -> tuple[RelyingParty, str]:
    """Trust nothing until client_id and redirect_uri are single, registered and exact."""
    if len(values.getlist("client_id")) != 1:
        raise PageError("invalid_client")
    client = find_client(values["client_id"])
    if client is None:
        raise PageError("invalid_client")
    if len(values.getlist("redirect_uri")) != 1:
        raise PageError("invalid_redirect_uri")
    redirect_uri = values["redirect_uri"]
    if not client.check_redirect_uri(redirect_uri):
        raise PageError("invalid_redirect_uri")
    return client, redirect_uri


def check_no_duplicates(values: MultiDict[str, str]) -> None:
    """OAuth 2.0 §3.1: request parameters must not be included more than once."""
    for key in values:
        if len(values.getlist(key)) > 1:
            raise RedirectError("invalid_request", f"'{key}' is repeated")


def check_lengths(values: MultiDict[str, str]) -> None:
    """Refuse oversized values before doing any work with them."""
    for key, value in values.items():
        if len(value) > MAX_VALUE and key not in ("id_token_hint", "claims"):
            raise RedirectError("invalid_request", f"'{key}' is too long")


def check_response_type(values: MultiDict[str, str]) -> None:
    """Only the authorization code flow; a missing response_type is a malformed request."""
    if not values.get("response_type"):
        raise RedirectError("invalid_request", "response_type is required.")
    if values.get("response_type") != "code":
        raise RedirectError("unsupported_response_type", "Only response_type=code is supported.")


def check_request_objects(values: MultiDict[str, str]) -> None:
    """Request objects are not supported (OIDC Core §6)."""
    if "request" in values:
        raise RedirectError("request_not_supported", "Request objects are not supported.")
    if "request_uri" in values:
        raise RedirectError("request_uri_not_supported", "request_uri is not supported.")


def check_scope(values: MultiDict[str, str]) -> str:
    """The openid scope is required; unknown scopes are ignored."""
    scope = normalise_scope(values.get("scope"))
    if "openid" not in scope.split():
        raise RedirectError("invalid_scope", "The openid scope is required.")
    return scope


def check_pkce(values: MultiDict[str, str]) -> str:
    """RFC 7636 for every client, S256 only: no challenge, no method or plain are refused."""
    challenge = values.get("code_challenge")
    method = values.get("code_challenge_method")
    if not challenge:
        raise RedirectError("invalid_request", "code_challenge is required (PKCE S256).")
    if method != "S256":
        raise RedirectError("invalid_request", "code_challenge_method must be S256.")
    if not CHALLENGE_RE.match(challenge):
        raise RedirectError("invalid_request", "code_challenge is malformed.")
    return challenge


def check_prompt(values: MultiDict[str, str]) -> set[str]:
    """Known prompt values; none stands alone (OIDC Core §3.1.2.1)."""
    prompt = set((values.get("prompt") or "").split())
    if not prompt <= PROMPTS or ("none" in prompt and len(prompt) > 1):
        raise RedirectError("invalid_request", "Invalid prompt value.")
    return prompt


def check_max_age(values: MultiDict[str, str]) -> int | None:
    """max_age is a non-negative integer number of seconds."""
    raw = values.get("max_age")
    if raw is None:
        return None
    if not raw.isdigit():
        raise RedirectError("invalid_request", "max_age must be a non-negative integer.")
    return int(raw)


def check_claims(values: MultiDict[str, str]) -> dict[str, Any] | None:
    """The claims parameter must be a JSON object."""
    try:
        return parse_claims_request(values.get("claims"))
    except ValueError as exc:
        raise RedirectError("invalid_request", "claims must be a JSON object.") from exc


def validate() -> AuthorizationRequest:
    """Validate the current authorization request."""
    values = _params()
    client, redirect_uri = check_client_and_redirect(values)
    auth_request = AuthorizationRequest(client, redirect_uri, {"state": values.get("state")})
    try:
        check_no_duplicates(values)
        check_lengths(values)
        check_response_type(values)
        check_request_objects(values)
        auth_request.params.update(
            {
                "scope": check_scope(values),
                "code_challenge": check_pkce(values),
                "prompt": sorted(check_prompt(values)),
                "max_age": check_max_age(values),
                "claims": check_claims(values),
                "nonce": values.get("nonce"),
                "login_hint": values.get("login_hint"),
                "id_token_hint": values.get("id_token_hint"),
                "ui_locales": values.get("ui_locales"),
                "acr_values": values.get("acr_values"),
            }
        )
    except RedirectError as exc:
        raise _Redirect(auth_request, exc) from exc
    return auth_request


class _Redirect(Exception):
    def __init__(self, auth_request: AuthorizationRequest, error: RedirectError) -> None:
        super().__init__(error.error)
        self.auth_request = auth_request
        self.error = error


def redirect_to_client(auth_request: AuthorizationRequest, params: dict[str, str]) -> Response:
    """Send the authorization response to the exact registered redirect_uri (RFC 9207 iss)."""
    params = dict(params)
    if auth_request.state is not None:
        params["state"] = auth_request.state
    params["iss"] = current_app.config["ISSUER"]
    sep = "&" if "?" in auth_request.redirect_uri else "?"
    return redirect(auth_request.redirect_uri + sep + urlencode(params), 303)


def error_response(auth_request: AuthorizationRequest, error: str, description: str) -> Response:
    """Return an OAuth error to the client."""
    return redirect_to_client(auth_request, {"error": error, "error_description": description})


# Built once: every silent jump runs it. Only the id and sub are needed here (the code names
# the account; the token endpoint loads it with its person), so no ORM entity is built.
# The session's SQL record decides whether it is live: a Redis copy revived by a restart or
# failover of Redis must not bring an ended session back.
# One statement for both databases, run in autocommit (the code lives in Redis).
_ACTIVE_ACCOUNT = (
    "SELECT sso_session.ended_at, account.id, account.sub FROM sso_session"
    " LEFT OUTER JOIN account ON account.person_id = sso_session.person_id"
    " AND account.school_id = :school_id AND account.status = 'active'"
    " WHERE sso_session.id = :sid"
)


class AccountRef(NamedTuple):
    """The account a code is issued for."""

    id: int
    sub: str


class SessionEnded(Exception):
    """The browser's session has ended in SQL, whatever Redis says."""


def active_account(session: LiveSession, school_id: int) -> AccountRef | None:
    """Return the id and sub of the person's active account at a school (one query that also
    checks the session has not ended)."""
    row = autocommit_row(_ACTIVE_ACCOUNT, {"sid": session.sid, "school_id": school_id})
    if row is None or row[0] is not None:
        raise SessionEnded(session.sid)
    return None if row[1] is None else AccountRef(row[1], row[2])


def hint_matches(hint: str, client: RelyingParty, account: AccountRef) -> bool:
    """An id_token_hint must be our ID token for this person's account at this school."""
    claims = check_id_token_hint(hint)
    return claims is not None and claims.get("sub") == account.sub


def needs_login(session: LiveSession | None, params: dict[str, Any], fresh: bool) -> bool:
    """Tell whether the person must authenticate (again) for this request."""
    if session is None:
        return True
    if fresh:
        return False
    if "login" in params["prompt"]:
        return True
    max_age = params.get("max_age")
    return max_age is not None and time.time() - session.auth_time > max_age


def issue_code(
    auth_request: AuthorizationRequest, session: LiveSession, account: AccountRef
) -> Response:
    """Issue a code bound to client, redirect_uri, PKCE challenge, session and grant."""
    p = auth_request.params
    grant_id = secrets.token_urlsafe(16)
    payload = {
        "redirect_uri": auth_request.redirect_uri,
        "scope": p["scope"],
        "code_challenge": p["code_challenge"],
        "nonce": p.get("nonce"),
        "claims": p.get("claims"),
        "sid": session.sid,
        "account_id": account.id,
        "grant_id": grant_id,
    }
    code = codes.issue(
        auth_request.client.client_id, grant_id, payload, current_app.config["CODE_TTL_SECONDS"]
    )
    return redirect_to_client(auth_request, {"code": code})


def decide(auth_request: AuthorizationRequest, fresh: bool = False) -> Response:
    """Answer a valid request: a code, an error, or an interaction with the person."""
    p = auth_request.params
    session = load_session(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    login = needs_login(session, p, fresh)
    account = None
    if session is not None and not login:
        try:
            account = active_account(session, auth_request.client.row.school_id)
        except SessionEnded:
            session, login = None, True
        if account is None:
            if "none" in p["prompt"]:
                return error_response(
                    auth_request,
                    "login_required",
                    "No account at this school for the signed-in person.",
                )
            return redirect(
                url_for("login.no_account", ix=interactions.start(_stored(auth_request))), 303
            )
        if p.get("id_token_hint") and not hint_matches(
            p["id_token_hint"], auth_request.client, account
        ):
            login = True
    school_id = auth_request.client.row.school_id
    min_acr = assurance.required(p, school_id, account.id if account else None)
    if not login and session is not None and not assurance.satisfies(session.acr, min_acr):
        if "none" in p["prompt"]:
            return error_response(
                auth_request, "login_required", "A higher level of assurance (eID) is required."
            )
        login = True  # step up: the login page offers only the methods that reach min_acr
    if login:
        if "none" in p["prompt"]:
            return error_response(auth_request, "login_required", "The person must log in.")
        ix = interactions.start(_stored(auth_request, min_acr))
        return redirect(url_for("login.login", ix=ix), 303)
    assert session is not None and account is not None
    if not fresh:
        SSO_JUMPS.inc()  # the person did not log in for this school: a jump
    return issue_code(auth_request, session, account)


def _stored(auth_request: AuthorizationRequest, min_acr: str | None = None) -> dict[str, Any]:
    # school_id: the login POST counts failures and finds the account without a query.
    # min_acr: the level the login must reach (a step-up offers eID only).
    stored = {
        "client_id": auth_request.client.client_id,
        "school_id": auth_request.client.row.school_id,
        "redirect_uri": auth_request.redirect_uri,
        "params": auth_request.params,
        "started": int(time.time()),
    }
    if assurance.acr_rank(min_acr) > 0:
        stored["min_acr"] = min_acr
    return stored


def restore(stored: dict[str, Any]) -> AuthorizationRequest | None:
    """Rebuild a stored request; None if its client was removed meanwhile."""
    client = find_client(stored["client_id"])
    if client is None or not client.check_redirect_uri(stored["redirect_uri"]):
        return None
    return AuthorizationRequest(client, stored["redirect_uri"], stored["params"])


def authorize() -> Response:
    """Handle GET or POST /authorize."""
    try:
        auth_request = validate()
    except _Redirect as exc:
        return error_response(exc.auth_request, exc.error.error, exc.error.description)
    return decide(auth_request)
