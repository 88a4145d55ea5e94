"""The token endpoint's lane (idp/oidc/token_lane.py) answers a school's usual requests as
Flask's /token does, and leaves every other request to it untouched.

Each answer is compared with the general path's answer to the same kind of request (the same
school posting its secret in the form, RFC 6749 §2.3.1, which the lane never takes): status,
headers (all but the request id and the length) and the body's fields.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from idp.oidc.token_lane import basic_credentials, take
from tests.flows.test_token_errors import Setup, assert_token_error
from tests.flows.test_token_errors import setup as setup  # the same fixture: a school, a person
from tests.support import redeem, refresh, token_request

VARYING = {"x-request-id", "content-length", "date", "server", "connection", "keep-alive"}


def _headers(resp: requests.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.headers.items() if k.lower() not in VARYING}


def _code_request(setup: Setup, idp: str, scope: str) -> dict[str, str]:
    code, verifier = setup.code(idp, scope=scope)
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": setup.school.redirect_uri,
        "code_verifier": verifier,
    }


def test_a_code_exchange_answers_as_the_general_path(idp: str, setup: Setup) -> None:
    scope = "openid profile offline_access"
    lane = token_request(idp, setup.school, _code_request(setup, idp, scope))
    general = token_request(idp, setup.school, _code_request(setup, idp, scope), basic=False)
    assert lane.status_code == general.status_code == 200, (lane.text, general.text)
    assert _headers(lane) == _headers(general)
    assert set(lane.json()) == set(general.json())
    assert lane.headers["X-Request-Id"] and lane.headers["Cache-Control"] == "no-store"
    # Both are live: each refreshes once, through each path.
    assert refresh(idp, setup.school, lane.json()["refresh_token"]).status_code == 200
    assert refresh(idp, setup.school, general.json()["refresh_token"]).status_code == 200


def test_a_refresh_and_its_refusal_answer_as_the_general_path(idp: str, setup: Setup) -> None:
    scope = "openid offline_access"
    first = redeem(idp, setup.school, *setup.code(idp, scope=scope)).json()
    body = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    lane = token_request(idp, setup.school, body)
    assert lane.status_code == 200, lane.text
    again = {"grant_type": "refresh_token", "refresh_token": lane.json()["refresh_token"]}
    general = token_request(idp, setup.school, again, basic=False)
    assert general.status_code == 200, general.text
    assert _headers(lane) == _headers(general)
    assert set(lane.json()) == set(general.json())
    # The first token again: reuse, refused alike on both paths, and the family is gone.
    reused_lane = token_request(idp, setup.school, body)
    reused_general = token_request(idp, setup.school, body, basic=False)
    assert_token_error(reused_lane, "invalid_grant")
    assert_token_error(reused_general, "invalid_grant")
    assert _headers(reused_lane) == _headers(reused_general)
    assert_token_error(refresh(idp, setup.school, general.json()["refresh_token"]), "invalid_grant")


def test_a_wrong_secret_gets_the_general_paths_401(idp: str, setup: Setup) -> None:
    data = _code_request(setup, idp, "openid")
    resp = requests.post(
        f"{idp}/token", data=data, auth=(setup.school.client_id, "not-the-secret"), timeout=10
    )
    assert_token_error(resp, "invalid_client", 401)
    # Nothing was consumed: the right secret still redeems the code.
    assert token_request(idp, setup.school, data).status_code == 200


def _environ(body: str, **extra: Any) -> dict[str, Any]:
    raw = body.encode()
    env: dict[str, Any] = {
        "PATH_INFO": "/token",
        "REQUEST_METHOD": "POST",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(raw)),
        "HTTP_HOST": "127.0.0.1:5000",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "HTTP_AUTHORIZATION": "Basic Y2xpZW50OnNlY3JldA==",  # client:secret
    }
    env.update(extra)
    return env


USUAL = urlencode({"grant_type": "refresh_token", "refresh_token": "r" * 43})


def test_the_lane_takes_a_usual_request_and_leaves_its_body_readable() -> None:
    env = _environ(USUAL)
    taken = take(env)
    assert taken is not None
    assert (taken.client_id, taken.secret, taken.grant) == ("client", "secret", "refresh_token")
    assert env["wsgi.input"].read() == USUAL.encode()


@pytest.mark.parametrize(
    "body, extra",
    [
        (USUAL + "&refresh_token=x", {}),  # repeated parameter
        (USUAL + "&client_id=client", {}),  # credentials in the form too
        (USUAL.replace("refresh_token", "client_credentials", 1), {}),  # another grant
        (USUAL, {"QUERY_STRING": "a=b"}),
        (USUAL, {"CONTENT_TYPE": "application/json"}),
        (USUAL, {"CONTENT_LENGTH": "9000"}),
        (USUAL, {"HTTP_HOST": "idp.example.ee"}),  # http, not loopback
        (USUAL, {"HTTP_AUTHORIZATION": "Bearer x"}),
        (USUAL, {"HTTP_AUTHORIZATION": "Basic !!"}),
        (USUAL, {"REQUEST_METHOD": "GET"}),
        (USUAL, {"PATH_INFO": "/revoke"}),
        ("grant_type=refresh_token&%zz", {}),
    ],
)
def test_the_lane_leaves_everything_else_to_flask(body: str, extra: dict[str, Any]) -> None:
    env = _environ(body, **extra)
    if "CONTENT_LENGTH" in extra:
        env["wsgi.input"] = io.BytesIO(body.encode())
    assert take(env) is None
    # Whatever it read is still there for the general path.
    assert env["wsgi.input"].read() == body.encode()


def test_basic_credentials_are_read_as_rfc_6749_says() -> None:
    assert basic_credentials("Basic Y2xpZW50OnNlY3JldA==") == ("client", "secret")
    # client_id and secret are form-urlencoded before base64 (RFC 6749 §2.3.1).
    assert basic_credentials("basic YSUzQWI6YyUyNWQ=") == ("a:b", "c%d")
    assert basic_credentials("Basic Y2xpZW50") is None  # no secret
    assert basic_credentials("Basic OnNlY3JldA==") is None  # no id
