"""A misbehaving OpenID provider for testing what the school instance refuses.

It speaks enough of the protocol to take a school through the code flow (discovery, a JWKS of
its own test keys, an authorization endpoint that answers at once, a token endpoint), and its
`scenario` decides how it misbehaves: which ID token it crafts, or which error it answers a
silent (`prompt=none`) request with. A school instance tenant whose issuer is this provider is
served on a port of its own, so every test goes through real HTTP like a browser would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.wrappers import Response

from tests.support import LiveServer, free_port

KID = "hostile-1"
GIVEN_NAME, FAMILY_NAME = "Võõras", "Külaline"

# Scenarios of the token endpoint (each crafts one kind of bad ID token), and of the
# authorization endpoint (errors and mix-ups).
ID_TOKEN_SCENARIOS = (
    "wrong_iss",
    "wrong_aud",
    "aud_list_other_azp",
    "expired",
    "issued_in_future",
    "bad_signature",
    "unknown_kid",
    "alg_none",
    "nonce_mismatch",
    "nonce_missing",
    "typ_at_jwt",
    "typ_logout_jwt",
    "typ_missing",
    "sid_missing",
)
TOKEN_SCENARIOS = (
    "token_invalid_grant",
    "token_not_json",
    "token_without_id_token",
    "token_without_access_token",
    "token_id_token_not_a_string",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class HostileIdp:
    """The provider's state: its keys, the scenario of the moment, what it was sent."""

    url: str
    key: RSAKey
    stranger: RSAKey
    scenario: str = "valid"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def id_token(self, grant: dict[str, Any]) -> str:
        """Craft the ID token of the current scenario for one authorization."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": "hostile-sub-1",
            "aud": grant["client_id"],
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "sid": "hostile-sid-1",
            "nonce": grant.get("nonce"),
            "given_name": GIVEN_NAME,
            "family_name": FAMILY_NAME,
            "roles": ["parent"],
        }
        header: dict[str, Any] = {"alg": "RS256", "kid": KID, "typ": "JWT"}
        key = self.key
        s = self.scenario
        if s == "wrong_iss":
            claims["iss"] = "https://idp.example.invalid"
        elif s == "wrong_aud":
            claims["aud"] = "some-other-school"
        elif s == "aud_list_other_azp":
            claims["aud"] = [grant["client_id"], "some-other-school"]
            claims["azp"] = "some-other-school"
        elif s == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 600
        elif s == "issued_in_future":
            claims["iat"], claims["exp"] = now + 3600, now + 7200
        elif s == "bad_signature":
            key = self.stranger  # same kid as the published key, another key signs
        elif s == "unknown_kid":
            key = self.stranger
            header["kid"] = "not-in-the-jwks"
        elif s == "nonce_mismatch":
            claims["nonce"] = "a-nonce-of-another-login"
        elif s == "nonce_missing":
            del claims["nonce"]
        elif s == "typ_at_jwt":
            header["typ"] = "at+jwt"
        elif s == "typ_logout_jwt":
            header["typ"] = "logout+jwt"
        elif s == "typ_missing":
            del header["typ"]
        elif s == "sid_missing":
            del claims["sid"]
        if s == "alg_none":
            unsigned = {"alg": "none", "typ": "JWT"}
            return f"{_b64(json.dumps(unsigned).encode())}.{_b64(json.dumps(claims).encode())}."
        return jwt.encode(header, claims, key, default_type=None)


def create_app(state: HostileIdp) -> Flask:
    """The provider's endpoints."""
    app = Flask(__name__)

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Response:
        return jsonify(
            {
                "issuer": state.url,
                "authorization_endpoint": f"{state.url}/authorize",
                "token_endpoint": f"{state.url}/token",
                "jwks_uri": f"{state.url}/jwks",
                "end_session_endpoint": f"{state.url}/logout",
                "response_types_supported": ["code"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
            }
        )

    @app.get("/jwks")
    def jwks() -> Response:
        return jsonify({"keys": [state.key.as_dict(private=False)]})

    @app.get("/authorize")
    def authorize() -> Response:
        args = request.args.to_dict()
        state.authorize_requests.append(args)
        answer: dict[str, str] = {}
        if args.get("prompt") == "none" and state.scenario == "silent_server_error":
            answer = {"error": "server_error", "error_description": "Something broke."}
        else:
            code = secrets.token_urlsafe(16)
            state.codes[code] = {
                "client_id": args.get("client_id"),
                "nonce": args.get("nonce"),
                "challenge": args.get("code_challenge"),
            }
            answer = {"code": code}
        if "state" in args:
            answer["state"] = args["state"]
        answer["iss"] = (
            "https://idp.example.invalid" if state.scenario == "mixup_iss" else state.url
        )
        return redirect(f"{args.get('redirect_uri')}?{urlencode(answer)}", 303)

    @app.post("/token")
    def token() -> Response:
        form = request.form.to_dict()
        state.token_requests.append(form)
        grant = state.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        if (
            grant is None
            or grant["challenge"] != challenge
            or state.scenario == "token_invalid_grant"
        ):
            return Response(
                json.dumps({"error": "invalid_grant"}), 400, mimetype="application/json"
            )
        if state.scenario == "token_not_json":
            return Response("<html>Service unavailable</html>", 200, mimetype="text/html")
        answer = {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 300,
            "refresh_token": secrets.token_urlsafe(24),
            "id_token": state.id_token(grant),
        }
        if state.scenario == "token_without_id_token":
            del answer["id_token"]
        if state.scenario == "token_without_access_token":
            del answer["access_token"]
        if state.scenario == "token_id_token_not_a_string":
            answer["id_token"] = {"iss": state.url, "sub": "hostile-sub-1"}
        return jsonify(answer)

    return app


@dataclass
class HostileSchool:
    """A school instance tenant that trusts the hostile provider."""

    url: str
    slug: str
    client_id: str
    idp: HostileIdp

    @property
    def cookie_name(self) -> str:
        """The school's session cookie."""
        return f"stuudium_{self.slug}"


def serve_hostile_school(school_app: Flask) -> Iterator[HostileSchool]:
    """Serve a hostile provider and a school that trusts it (a generator for a fixture)."""
    from school_instance.cli import add_tenant

    idp_port, school_port = free_port(), free_port()
    state = HostileIdp(
        url=f"http://127.0.0.1:{idp_port}",
        key=RSAKey.generate_key(2048, parameters={"kid": KID, "alg": "RS256", "use": "sig"}),
        stranger=RSAKey.generate_key(2048, parameters={"kid": KID, "alg": "RS256"}),
    )
    idp_server = LiveServer(create_app(state), idp_port).start()
    slug = "h-" + secrets.token_hex(4)
    client_id = "hostile-client-" + secrets.token_hex(4)
    school_url = f"http://127.0.0.1:{school_port}"
    add_tenant(
        school_app,
        slug=slug,
        name=f"Kool {slug}",
        url=school_url,
        issuer=state.url,
        client_id=client_id,
        client_secret=secrets.token_urlsafe(32),
        hosts=[f"127.0.0.1:{school_port}"],
    )
    school_server = LiveServer(school_app, school_port).start()
    try:
        yield HostileSchool(school_url, slug, client_id, state)
    finally:
        school_server.stop()
        idp_server.stop()
