"""The token endpoint's own lane: the requests every school makes all day — a code exchange or
a refresh, client_secret_basic, a plain form — answered without Flask's request machinery and
Authlib's request objects, which cost more CPU than the exchange's work (make bench: compare,
inproc). Everything else — other grants and authentication methods, repeated parameters, a
query string, a body too large, another content type, http to a host that is not loopback, a
client whose secret or grant does not check out — goes to Flask's /token unchanged (the body is
handed on as read), before anything is consumed, so each of those answers stays the one the
endpoint's tests describe.

The lane does what a request would: the same grant functions (grants.redeem_code,
grants.rotate_refresh) in an application context, the unit of work ended as after any request
(shared.db.end_unit), the same answer (Authlib's JSON body and headers, no-store, the security
headers, X-Request-Id), the same 503 for a storage failure, the same access line and counters.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import psycopg
from authlib.common.security import is_secure_transport
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import MultiDict
from werkzeug.http import HTTP_STATUS_CODES

from idp.metrics import TOKENS
from idp.oidc.clients import RelyingParty, find_client
from idp.oidc.grants import redeem_code, rotate_refresh
from shared.db import end_unit
from shared.logs import REQUEST_ID, new_request_id, record_access
from shared.outage import FAILURES, RETRY_AFTER, UNAVAILABLE
from shared.security import ANSWER_HEADERS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

GRANTS = {"authorization_code": redeem_code, "refresh_token": rotate_refresh}
MAX_BODY = 8192  # a code exchange is ~250 bytes; anything larger takes the general path
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Taken:
    """A request the lane answers: its form, the client's credentials, its grant."""

    form: MultiDict[str, str]
    client_id: str
    secret: str
    grant: str


def basic_credentials(header: str) -> tuple[str, str] | None:
    """client_secret_basic's id and secret (RFC 6749 §2.3.1, read as Authlib reads them)."""
    kind, _, token = header.partition(" ")
    if kind.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    client_id, secret = unquote(client_id), unquote(secret)
    return (client_id, secret) if client_id and secret else None


def take(environ: WSGIEnvironment) -> Taken | None:
    """The request, when it is one the lane answers; its body stays readable for Flask."""
    if (
        environ.get("PATH_INFO") != "/token"
        or environ.get("REQUEST_METHOD") != "POST"
        or environ.get("QUERY_STRING")
        or str(environ.get("CONTENT_TYPE", "")).partition(";")[0].strip().lower() != FORM
    ):
        return None
    length = str(environ.get("CONTENT_LENGTH", ""))
    if not length.isdigit() or not 0 < int(length) <= MAX_BODY:
        return None
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    if not is_secure_transport(f"{environ.get('wsgi.url_scheme', 'http')}://{host}/token"):
        return None
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    form = MultiDict(pairs)
    grant = form.get("grant_type", "")
    if (
        len(form) != len(pairs)
        or grant not in GRANTS
        or "client_id" in form
        or "client_secret" in form
    ):
        return None
    credentials = basic_credentials(str(environ.get("HTTP_AUTHORIZATION", "")))
    if credentials is None:
        return None
    return Taken(form, credentials[0], credentials[1], grant)


def authenticated(taken: Taken) -> RelyingParty | None:
    """The client, when its secret, its method and its grant all check out."""
    client = find_client(taken.client_id)
    if (
        client is None
        or not client.check_endpoint_auth_method("client_secret_basic", "token")
        or not client.check_client_secret(taken.secret)
        or not client.check_grant_type(taken.grant)
    ):
        return None
    return client


class TokenLane:
    """WSGI middleware in front of the IdP's Flask app for the token endpoint's usual requests."""

    def __init__(self, app: Flask, inner: WSGIApplication) -> None:
        self.app = app
        self.inner = inner

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer the request here when it is the lane's; else hand it to Flask."""
        started = time.perf_counter()
        taken = take(environ)
        if taken is None:
            return self.inner(environ, start_response)
        with self.app.app_context():
            answer = self.attempt(taken)
        if answer is None:
            return self.inner(environ, start_response)
        status, body, headers = answer
        rid = new_request_id(str(environ.get("HTTP_X_REQUEST_ID", "")))
        data = json.dumps(body).encode()
        start_response(
            f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}",
            [
                *headers,
                *ANSWER_HEADERS,
                ("Content-Length", str(len(data))),
                (REQUEST_ID, rid),
            ],
        )
        if status == 200:
            TOKENS.labels(taken.grant).inc()
        record_access(self.app.name, "POST", "/token", status, started, rid)
        return [data]

    def attempt(self, taken: Taken) -> tuple[int, dict[str, Any], list[tuple[str, str]]] | None:
        """The answer, or None when the client does not check out (Flask's /token answers); a
        storage failure while finding the client is the lane's 503."""
        try:
            client = authenticated(taken)
        except FAILURES as exc:
            return self.unavailable(exc)
        return None if client is None else self.answer(client, taken)

    def answer(
        self, client: RelyingParty, taken: Taken
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Run the grant and end the unit of work as after a request (committed on success,
        rolled back otherwise): the status, JSON body and headers."""
        try:
            body = GRANTS[taken.grant](client, taken.form)
        except OAuth2Error as error:
            status, payload, headers = error()
            answer = int(status), dict(payload), list(headers)
        except FAILURES as exc:
            answer = self.unavailable(exc)
        except Exception:
            log.exception("the token endpoint failed")
            answer = 500, {"error": "server_error"}, list(default_json_headers)
        else:
            answer = 200, body, list(default_json_headers)
        try:
            end_unit(commit=answer[0] == 200)
        except (psycopg.Error, SQLAlchemyError) as exc:  # a commit or rollback refused
            return self.unavailable(exc)
        return answer

    def unavailable(self, exc: Exception) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """A storage failure: 503 with Retry-After, as shared.outage answers a client."""
        log.warning("storage unavailable: %s on POST /token", type(exc).__name__)
        return 503, dict(UNAVAILABLE), [*default_json_headers[:2], ("Retry-After", RETRY_AFTER)]
