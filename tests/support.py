"""Test helpers: a live IdP over HTTP, registration factories and a scripted browser."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from flask import Flask
from werkzeug.serving import make_server


def _ephemeral_low() -> int:
    """The first port of the kernel's range for the local end of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """Return a free TCP port on loopback, below the ephemeral range: a port from that range
    (what binding port 0 gives) can be taken, before the server meant for it binds it, by the
    local end of any outgoing connection the test makes meanwhile (seen in CI: a gunicorn of
    the scale-out test found its port in use)."""
    low = _ephemeral_low()
    for _ in range(200):
        port = secrets.randbelow(low - 10000) + 10000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A WSGI app served over real HTTP on loopback from a background thread."""

    def __init__(self, app: Flask, port: int) -> None:
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        """Start serving."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port (so that it refuses connections, or can serve
        again)."""
        self.server.shutdown()
        self.server.server_close()


def pkce_pair() -> tuple[str, str]:
    """Return a (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


@dataclass
class SchoolClient:
    """A registered school and its client credentials."""

    slug: str
    name: str
    client_id: str
    client_secret: str | None
    redirect_uri: str
    post_logout_redirect_uri: str


@dataclass
class PersonLogin:
    """A person with an account at a school."""

    email: str
    password: str
    sub: str
    given_name: str
    family_name: str


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
IX_RE = re.compile(r'name="ix" value="([^"]+)"')


def authorize_url(issuer: str, client: SchoolClient, challenge: str, **extra: str) -> str:
    """Build an authorization request URL with PKCE S256."""
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return f"{issuer}/authorize?{urlencode(params)}"


class Browser:
    """A cookie-keeping HTTP user agent that follows the IdP's pages like a person would."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.http = requests.Session()

    def follow(self, url: str, stop_prefix: str, max_hops: int = 10) -> requests.Response:
        """Follow redirects until one points at stop_prefix (the client) or a page is shown."""
        resp = self.http.get(url, allow_redirects=False, timeout=10)
        for _ in range(max_hops):
            location = resp.headers.get("Location")
            if resp.status_code not in (301, 302, 303, 307, 308) or not location:
                return resp
            location = urljoin(resp.url, location)
            if location.startswith(stop_prefix):
                return resp
            resp = self.http.get(location, allow_redirects=False, timeout=10)
        raise AssertionError("too many redirects")

    def post_login(
        self, page: requests.Response, email: str, password: str, timeout: float = 10
    ) -> requests.Response:
        """Fill in and post the login form shown on page; the answer itself (303 on, or the
        form again)."""
        csrf = CSRF_RE.search(page.text)
        ix = IX_RE.search(page.text)
        assert csrf and ix, "login form expected"
        return self.http.post(
            f"{self.issuer}/login",
            data={
                "csrf_token": csrf.group(1),
                "ix": ix.group(1),
                "email": email,
                "password": password,
            },
            allow_redirects=False,
            timeout=timeout,
        )

    def submit_login(
        self, page: requests.Response, email: str, password: str, stop_prefix: str
    ) -> requests.Response:
        """Fill in and post the login form shown on page, then follow on."""
        resp = self.post_login(page, email, password)
        location = resp.headers.get("Location")
        if resp.status_code != 303 or not location:
            return resp
        return self.follow(urljoin(resp.url, location), stop_prefix)

    def login(self, url: str, person: PersonLogin, client: SchoolClient) -> dict[str, str]:
        """Run an authorization request through the login page; return the callback params."""
        page = self.follow(url, client.redirect_uri)
        if page.status_code == 200:
            page = self.submit_login(page, person.email, person.password, client.redirect_uri)
        return callback_params(page)


def callback_params(resp: requests.Response) -> dict[str, str]:
    """Return the query parameters of a redirect to the client."""
    location = resp.headers.get("Location", "")
    assert resp.status_code in (302, 303), f"expected a redirect, got {resp.status_code}"
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token_request(
    issuer: str, client: SchoolClient, data: dict[str, Any], basic: bool = True
) -> requests.Response:
    """POST to the token endpoint with the client's credentials."""
    auth = (client.client_id, client.client_secret) if basic and client.client_secret else None
    if not basic or client.client_secret is None:
        data = {**data, "client_id": client.client_id}
        if client.client_secret and not basic:
            data["client_secret"] = client.client_secret
    return requests.post(f"{issuer}/token", data=data, auth=auth, timeout=10)


def unverified_claims(token: str) -> dict[str, Any]:
    """Read a JWT's claims without verifying it (for tests that verify elsewhere)."""
    import json

    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class Receiver:
    """A tiny HTTP endpoint on loopback that records POSTed forms and answers a set status."""

    def __init__(self, status: int = 200, port: int = 0) -> None:
        import http.server
        import time

        self.status = status
        self.script: list[int] = []  # statuses to answer first, one per request
        self.posts: list[dict[str, list[str]]] = []
        self.arrived: list[float] = []  # time.time() of each post
        self.delay = 0.0  # seconds to hang before answering (a school past the timeout)
        self.bodies: list[str] = []  # the raw bodies, and their content types
        self.content_types: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                receiver.posts.append(parse_qs(body))
                receiver.arrived.append(time.time())
                if receiver.delay:
                    time.sleep(receiver.delay)
                receiver.bodies.append(body)
                receiver.content_types.append(self.headers.get("Content-Type", ""))
                self.send_response(receiver.script.pop(0) if receiver.script else receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop the endpoint and free its port."""
        self.server.shutdown()
        self.server.server_close()


def obtain_code(
    browser: Browser, issuer: str, client: SchoolClient, person: PersonLogin, **extra: str
) -> tuple[str, str]:
    """Run an authorization request (logging in if needed); return (code, PKCE verifier)."""
    verifier, challenge = pkce_pair()
    params = browser.login(authorize_url(issuer, client, challenge, **extra), person, client)
    assert "code" in params, f"expected a code, got {params}"
    return params["code"], verifier


def redeem(
    issuer: str, client: SchoolClient, code: str, verifier: str, **overrides: str
) -> requests.Response:
    """Exchange a code at the token endpoint (overrides replace or add form fields)."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
        **overrides,
    }
    return token_request(issuer, client, data)


def refresh(issuer: str, client: SchoolClient, refresh_token: str) -> requests.Response:
    """Use a refresh token at the token endpoint."""
    return token_request(
        issuer, client, {"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def userinfo(issuer: str, access_token: str) -> requests.Response:
    """Call the userinfo endpoint with a bearer token."""
    return requests.get(
        f"{issuer}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )


@dataclass
class Tenant:
    """A school served by the school instance, with its IdP client."""

    url: str
    client: SchoolClient
    server: LiveServer | None = None


def sign_in(
    issuer: str,
    browser: Browser,
    client: SchoolClient,
    person: PersonLogin,
    scope: str = "openid profile offline_access",
) -> dict[str, Any]:
    """Log in through the browser and return the token response (with a refresh token)."""
    code, verifier = obtain_code(browser, issuer, client, person, scope=scope)
    resp = redeem(issuer, client, code, verifier)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def sign_in_at_school(browser: Browser, school_url: str, person: PersonLogin) -> None:
    """Sign in at a school through the IdP's login page; land back at the school."""
    page = browser.follow(f"{school_url}/auth/login", stop_prefix="\x00")
    assert page.status_code == 200 and 'name="password"' in page.text
    final = browser.submit_login(page, person.email, person.password, stop_prefix="\x00")
    assert final.status_code == 200, final.text
    assert final.url.startswith(school_url), (final.url, final.text[:2000])
