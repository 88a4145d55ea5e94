"""Bad input at the authorization endpoint (RFC 6749 §4.1.2.1, RFC 7636, OIDC Core §3.1.2.6).

Errors found before client_id and redirect_uri are trusted are an HTML page (400) and never a
redirect; later errors go to the exact registered redirect_uri with error, state and iss and
never carry a code. The refused requests are made from a browser with a live SSO session, so a
missing code means the request was refused, not that a login page came first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc.jwk import RSAKey

from tests.support import (
    Browser,
    PersonLogin,
    SchoolClient,
    authorize_url,
    obtain_code,
    pkce_pair,
    redeem,
)


@dataclass
class SignedIn:
    """A browser with a live SSO session of a person who has an account at the school."""

    browser: Browser
    school: SchoolClient
    person: PersonLogin

    def get(self, url: str) -> requests.Response:
        """GET a URL in this browser without following redirects."""
        return self.browser.http.get(url, allow_redirects=False, timeout=10)


@pytest.fixture
def signed_in(
    idp: str,
    make_school: Callable[..., SchoolClient],
    make_person: Callable[..., PersonLogin],
    browser: Browser,
) -> SignedIn:
    """A signed-in browser; its session is proven live by a first request that gets a code."""
    school = make_school()
    person = make_person(school)
    obtain_code(browser, idp, school, person)
    return SignedIn(browser, school, person)


@pytest.fixture
def rs_signed_in(
    idp: str,
    make_school: Callable[..., SchoolClient],
    make_person: Callable[..., PersonLogin],
    browser: Browser,
) -> SignedIn:
    """signed_in with a client that takes RS256 ID tokens (the algorithm-confusion forgeries
    key HS256 with an RSA public key)."""
    school = make_school(id_token_alg="RS256")
    person = make_person(school)
    obtain_code(browser, idp, school, person)
    return SignedIn(browser, school, person)


def assert_error_page(resp: requests.Response) -> None:
    """The error is shown to the person: 400, HTML, and no redirect anywhere."""
    assert resp.status_code == 400, resp.text
    assert "Location" not in resp.headers
    assert resp.headers["Content-Type"].startswith("text/html")


def assert_error_redirect(
    resp: requests.Response, issuer: str, client: SchoolClient, error: str, state: str
) -> dict[str, list[str]]:
    """The error goes to the exact registered redirect_uri with state and iss, and no code."""
    assert resp.status_code in (302, 303), resp.text
    location = resp.headers["Location"]
    assert location.startswith(client.redirect_uri + "?"), location
    parts = urlsplit(location)
    assert parts.fragment == ""
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query["error"] == [error], query
    assert query["state"] == [state]
    assert query["iss"] == [issuer]
    assert not {"code", "access_token", "id_token", "token_type"} & set(query)
    assert set(query) <= {"error", "error_description", "state", "iss"}
    return query


def _without(url: str, *names: str) -> str:
    """Return url without the named query parameters."""
    parts = urlsplit(url)
    query = [(k, v) for k, vs in parse_qs(parts.query).items() for v in vs if k not in names]
    return parts._replace(query=urlencode(query)).geturl()


# --- client_id and redirect_uri: an error page, never a redirect -------------------------------


def _last_segment(uri: str, change: Callable[[str], str]) -> str:
    head, _, last = uri.rpartition("/")
    return head + "/" + change(last)


REDIRECT_VARIANTS: dict[str, Callable[[str], str]] = {
    "trailing slash": lambda uri: uri + "/",
    "upper case": lambda uri: uri.upper(),
    "upper case path only": lambda uri: _last_segment(uri, str.upper),
    "extra query": lambda uri: uri + "?next=%2F",
    "empty query": lambda uri: uri + "?",
    "fragment": lambda uri: uri + "#frag",
    "other host": lambda uri: uri.replace("127.0.0.1:9", "evil.example"),
    "other port": lambda uri: uri.replace("127.0.0.1:9", "127.0.0.1:10"),
    "other scheme": lambda uri: uri.replace("http://", "https://"),
    "userinfo trick": lambda uri: uri.replace("127.0.0.1:9", "127.0.0.1:9@evil.example"),
    "dot segment": lambda uri: _last_segment(uri, lambda last: "x/../" + last),
    "percent-encoded path": lambda uri: _last_segment(
        uri, lambda last: f"%{ord(last[0]):02x}" + last[1:]
    ),
    "prefix only": lambda uri: uri[:-1],
    "longer path": lambda uri: uri + "/evil",
    "surrounding space": lambda uri: " " + uri,
    "empty": lambda uri: "",
}


@pytest.mark.parametrize("variant", sorted(REDIRECT_VARIANTS))
def test_altered_redirect_uri_is_an_error_page(idp: str, signed_in: SignedIn, variant: str) -> None:
    school = signed_in.school
    _, challenge = pkce_pair()
    bad = REDIRECT_VARIANTS[variant](school.redirect_uri)
    assert bad != school.redirect_uri
    assert_error_page(signed_in.get(authorize_url(idp, school, challenge, redirect_uri=bad)))


def test_missing_redirect_uri_is_an_error_page(idp: str, signed_in: SignedIn) -> None:
    school = signed_in.school
    _, challenge = pkce_pair()
    url = _without(authorize_url(idp, school, challenge), "redirect_uri")
    assert_error_page(signed_in.get(url))


def test_another_schools_redirect_uri_is_an_error_page(
    idp: str, signed_in: SignedIn, make_school: Callable[..., SchoolClient]
) -> None:
    other = make_school()
    _, challenge = pkce_pair()
    url = authorize_url(idp, signed_in.school, challenge, redirect_uri=other.redirect_uri)
    assert_error_page(signed_in.get(url))


def test_bad_redirect_uri_wins_over_other_errors(idp: str, signed_in: SignedIn) -> None:
    """Even a request that is wrong in other ways is never redirected to an unregistered URI."""
    school = signed_in.school
    url = authorize_url(
        idp, school, "", response_type="token", scope="email", redirect_uri="http://evil.example/cb"
    )
    assert_error_page(signed_in.get(url))


@pytest.mark.parametrize("client_id", ["unknown", "missing", "empty", "oversized"])
def test_unknown_client_is_an_error_page(idp: str, signed_in: SignedIn, client_id: str) -> None:
    school = signed_in.school
    _, challenge = pkce_pair()
    url = _without(authorize_url(idp, school, challenge), "client_id")
    value = {"unknown": "c-doesnotexist", "missing": None, "empty": "", "oversized": "a" * 300}[
        client_id
    ]
    if value is not None:
        url += "&" + urlencode({"client_id": value})
    assert_error_page(signed_in.get(url))


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
@pytest.mark.parametrize("same_value", [True, False], ids=["same value", "other value"])
def test_duplicated_client_or_redirect_uri_is_an_error_page(
    idp: str,
    signed_in: SignedIn,
    make_school: Callable[..., SchoolClient],
    name: str,
    same_value: bool,
) -> None:
    school = signed_in.school
    _, challenge = pkce_pair()
    other = make_school()
    value = getattr(school if same_value else other, name)
    url = authorize_url(idp, school, challenge) + "&" + urlencode({name: value})
    assert_error_page(signed_in.get(url))


# --- errors returned to the client ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "scope",
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "state",
        "nonce",
        "prompt",
        "max_age",
        "login_hint",
    ],
)
def test_duplicated_parameter_is_invalid_request(idp: str, signed_in: SignedIn, name: str) -> None:
    school = signed_in.school
    _, challenge = pkce_pair()
    base = {
        "state": "st-dup",
        "nonce": "n-1",
        "prompt": "none",
        "max_age": "3600",
        "login_hint": signed_in.person.email,
    }
    url = authorize_url(idp, school, challenge, **base)
    query = parse_qs(urlsplit(url).query)
    url += "&" + urlencode({name: query[name][0]})  # the very same value a second time
    resp = signed_in.get(url)
    assert_error_redirect(resp, idp, school, "invalid_request", "st-dup")


@pytest.mark.parametrize(
    "response_type",
    ["token", "id_token", "code token", "code id_token", "id_token token", "none", "CODE"],
)
def test_response_type_other_than_code_is_unsupported(
    idp: str, signed_in: SignedIn, response_type: str
) -> None:
    school = signed_in.school
    _, challenge = pkce_pair()
    url = authorize_url(idp, school, challenge, response_type=response_type, state="st-rt")
    resp = signed_in.get(url)
    assert_error_redirect(resp, idp, school, "unsupported_response_type", "st-rt")


def test_missing_response_type_is_invalid_request(idp: str, signed_in: SignedIn) -> None:
    school = signed_in.school
    _, challenge = pkce_pair()
    url = _without(authorize_url(idp, school, challenge, state="st-nort"), "response_type")
    assert_error_redirect(signed_in.get(url), idp, school, "invalid_request", "st-nort")


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
def test_authorization_without_code_challenge_is_refused(
    idp: str,
    make_school: Callable[..., SchoolClient],
    make_person: Callable[..., PersonLogin],
    browser: Browser,
    public: bool,
) -> None:
    """PKCE for every client: no challenge (so a later verifier would have nothing to match)."""
    school = make_school(public=public)
    person = make_person(school)
    obtain_code(browser, idp, school, person)  # a live session for this school
    _, challenge = pkce_pair()
    url = _without(
        authorize_url(idp, school, challenge, state="st-nopkce"),
        "code_challenge",
        "code_challenge_method",
    )
    resp = browser.http.get(url, allow_redirects=False, timeout=10)
    assert_error_redirect(resp, idp, school, "invalid_request", "st-nopkce")


PKCE_VARIANTS: dict[str, Callable[[str], dict[str, str] | None]] = {
    "challenge without method": lambda c: None,
    "plain": lambda c: {"code_challenge_method": "plain"},
    "plain with a verifier-like challenge": lambda c: {
        "code_challenge_method": "plain",
        "code_challenge": "v" * 64,
    },
    "lower-case s256": lambda c: {"code_challenge_method": "s256"},
    "unknown method": lambda c: {"code_challenge_method": "S512"},
    "empty method": lambda c: {"code_challenge_method": ""},
    "empty challenge": lambda c: {"code_challenge": ""},
    "short challenge": lambda c: {"code_challenge": c[:42]},
    "long challenge": lambda c: {"code_challenge": c + "A"},
    "padded challenge": lambda c: {"code_challenge": c + "="},
    "standard base64 challenge": lambda c: {"code_challenge": c[:42] + "+"},
}


@pytest.mark.parametrize("variant", sorted(PKCE_VARIANTS))
def test_bad_pkce_parameters_are_invalid_request(
    idp: str, signed_in: SignedIn, variant: str
) -> None:
    school = signed_in.school
    _, challenge = pkce_pair()
    change = PKCE_VARIANTS[variant](challenge)
    url = authorize_url(idp, school, challenge, state="st-pkce", **(change or {}))
    if change is None:
        url = _without(url, "code_challenge_method")
    assert_error_redirect(signed_in.get(url), idp, school, "invalid_request", "st-pkce")


# --- id_token_hint: only our own, correctly signed ID tokens count ------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
    )


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode()) + "."


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = (
        _b64(json.dumps({**header, "alg": "HS256"}).encode())
        + "."
        + _b64(json.dumps(claims).encode())
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(mac)


def _rsa_public(issuer: str, kid: str) -> RSAKey:
    jwks = requests.get(f"{issuer}/jwks", timeout=10).json()
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    return RSAKey.import_key(jwk)


FORGERIES: dict[str, Callable[[str, dict[str, Any], dict[str, Any]], str]] = {
    "alg none": lambda iss, h, c: _unsigned({**h, "alg": "none"}, c),
    "alg None": lambda iss, h, c: _unsigned({**h, "alg": "None"}, c),
    "alg NONE": lambda iss, h, c: _unsigned({**h, "alg": "NONE"}, c),
    "HS256 keyed with the RSA public key PEM": lambda iss, h, c: _hs256(
        h, c, _rsa_public(iss, h["kid"]).as_pem(private=False)
    ),
    "HS256 keyed with the RSA public key DER": lambda iss, h, c: _hs256(
        h, c, _rsa_public(iss, h["kid"]).as_der(private=False)
    ),
    "HS256 keyed with the RSA public JWK": lambda iss, h, c: _hs256(
        h, c, json.dumps(_rsa_public(iss, h["kid"]).as_dict(private=False)).encode()
    ),
}


def _genuine_id_token(idp: str, signed_in: SignedIn) -> str:
    code, verifier = obtain_code(signed_in.browser, idp, signed_in.school, signed_in.person)
    resp = redeem(idp, signed_in.school, code, verifier)
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["id_token"]
    return token


def test_genuine_id_token_hint_with_prompt_none_gets_a_code(idp: str, signed_in: SignedIn) -> None:
    """The control for the forgeries below: the same request with the real token succeeds."""
    hint = _genuine_id_token(idp, signed_in)
    _, challenge = pkce_pair()
    url = authorize_url(
        idp, signed_in.school, challenge, prompt="none", id_token_hint=hint, state="st-ok"
    )
    resp = signed_in.get(url)
    assert resp.status_code in (302, 303)
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert "code" in query and "error" not in query and query["state"] == ["st-ok"]


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_id_token_hint_is_login_required(
    idp: str, rs_signed_in: SignedIn, forgery: str
) -> None:
    signed_in = rs_signed_in
    genuine = _genuine_id_token(idp, signed_in)
    header, claims = _segments(genuine)
    assert header["alg"] == "RS256"
    claims = {**claims, "iat": int(time.time()), "exp": int(time.time()) + 600}
    hint = FORGERIES[forgery](idp, header, claims)
    _, challenge = pkce_pair()
    url = authorize_url(
        idp, signed_in.school, challenge, prompt="none", id_token_hint=hint, state="st-forged"
    )
    assert_error_redirect(signed_in.get(url), idp, signed_in.school, "login_required", "st-forged")


def test_another_persons_id_token_hint_is_login_required(
    idp: str, signed_in: SignedIn, make_person: Callable[..., PersonLogin]
) -> None:
    """An id_token_hint must belong to the session's person at that school."""
    someone = make_person(signed_in.school, given_name="Jaan", family_name="Tamm")
    other_browser = Browser(idp)
    code, verifier = obtain_code(other_browser, idp, signed_in.school, someone)
    resp = redeem(idp, signed_in.school, code, verifier)
    assert resp.status_code == 200, resp.text
    _, challenge = pkce_pair()
    url = authorize_url(
        idp,
        signed_in.school,
        challenge,
        prompt="none",
        id_token_hint=resp.json()["id_token"],
        state="st-other",
    )
    assert_error_redirect(signed_in.get(url), idp, signed_in.school, "login_required", "st-other")


# --- oversized requests ------------------------------------------------------------------------


def test_megabyte_query_is_refused_fast(idp: str, signed_in: SignedIn) -> None:
    _, challenge = pkce_pair()
    url = authorize_url(idp, signed_in.school, challenge, login_hint="a" * 1024 * 1024)
    started = time.monotonic()
    resp = signed_in.browser.http.get(url, allow_redirects=False, timeout=5)
    assert resp.status_code == 414
    assert "Location" not in resp.headers
    assert time.monotonic() - started < 3


def test_megabyte_form_post_is_refused_fast(idp: str, signed_in: SignedIn) -> None:
    _, challenge = pkce_pair()
    query = parse_qs(urlsplit(authorize_url(idp, signed_in.school, challenge)).query)
    form = {k: v[0] for k, v in query.items()}
    form["login_hint"] = "a" * 1024 * 1024
    started = time.monotonic()
    resp = signed_in.browser.http.post(
        f"{idp}/authorize", data=form, allow_redirects=False, timeout=5
    )
    assert resp.status_code == 413
    assert "Location" not in resp.headers
    assert time.monotonic() - started < 3


def test_oversized_value_within_the_query_limit_is_invalid_request(
    idp: str, signed_in: SignedIn
) -> None:
    _, challenge = pkce_pair()
    url = authorize_url(idp, signed_in.school, challenge, login_hint="a" * 4000, state="st-long")
    assert_error_redirect(signed_in.get(url), idp, signed_in.school, "invalid_request", "st-long")
