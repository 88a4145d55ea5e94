"""A development stand-in for the state eID service (TARA's OIDC profile) — never for production.

It speaks the profile the IdP's eID client expects: discovery, JWKS, an authorization page on
which a developer picks a test person by isikukood (the method comes from the scope, as TARA
selects it: `idcard`, `mid`, `smartid`), a token endpoint with client_secret_basic and PKCE,
and ID tokens as TARA issues them: 40 seconds long, `sub` = "EE" + isikukood, names in capitals
in `profile_attributes` with `date_of_birth`, `amr`, `acr`, and TARA's non-standard `at_hash`
(standard Base64 with padding, not base64url). It refuses to start when STUUDIUM_ENV says
production. `make run` serves it at http://localhost:5009.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, redirect, render_template_string, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.wrappers import Response

from shared import isikukood as ik
from shared.config import ConfigError, env_str, is_production

PORT = 5009
BANNER = "ARENDUSKESKKOND — mitte toodangus kasutamiseks"
ID_TOKEN_SECONDS = 40  # TARA's ID-token lifetime
CODE_SECONDS = 60
# Scope → (amr, acr) as TARA reports them.
METHODS = {"idcard": ("idcard", "high"), "mid": ("mID", "high"), "smartid": ("smartid", "high")}
METHOD_NAMES = {"idcard": "ID-kaart", "mid": "Mobiil-ID", "smartid": "Smart-ID"}

# A hook that changes an ID token before it is signed: (claims, header) → the key to sign with
# (None: the stand-in's own). Tests build hostile variants with it.
Tamper = Callable[[dict[str, Any], dict[str, Any]], RSAKey | None]


@dataclass(frozen=True)
class EidPerson:
    """A person the page offers: the isikukood and the names as the state's register has them."""

    isikukood: str
    given_name: str
    family_name: str


@dataclass
class StandIn:
    """The stand-in's state: its key, registered clients, pending requests and codes."""

    issuer: str
    clients: dict[str, tuple[str, list[str]]]  # client_id → (secret, redirect URIs)
    people: list[EidPerson]
    tamper: Tamper | None = None
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True))
    kid: str = field(default_factory=lambda: "standin-" + secrets.token_hex(4))
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def id_token(self, grant: dict[str, Any], access_token: str) -> str:
        """An ID token with TARA's profile for one authorization."""
        now = int(time.time())
        person: EidPerson = grant["person"]
        amr, acr = METHODS[grant["method"]]
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "iss": self.issuer,
            "aud": [grant["client_id"]],
            "exp": now + ID_TOKEN_SECONDS,
            "iat": now,
            "nbf": now,
            "sub": "EE" + person.isikukood,
            "profile_attributes": {
                "date_of_birth": ik.birth_date(person.isikukood).isoformat(),
                "family_name": person.family_name.upper(),
                "given_name": person.given_name.upper(),
            },
            "amr": [amr],
            "state": grant["state"],
            "nonce": grant["nonce"],
            "acr": acr,
            "at_hash": tara_at_hash(access_token),
            "auth_time": now,
        }
        header: dict[str, Any] = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        key = self.tamper(claims, header) if self.tamper else None
        return jwt.encode(header, claims, key or self.key)


def tara_at_hash(access_token: str) -> str:
    """TARA's at_hash: the left half of the SHA-256, in standard Base64 with padding (OIDC
    Core asks for base64url without padding — TARA's quirk, reproduced)."""
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.b64encode(digest[: len(digest) // 2]).decode()


_PAGE = """<!doctype html>
<html lang="et"><head><meta charset="utf-8"><title>eID (arenduskeskkond)</title>
<style>body{font-family:sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
.banner{background:#b3261e;color:#fff;padding:.6rem 1rem;font-weight:700;text-align:center}
button{margin:.3rem 0;padding:.5rem 1rem}label{display:block;margin-top:.6rem}</style></head>
<body><p class="banner" role="alert">{{ banner }}</p>
{% if error %}<h1>Viga</h1><p>{{ error }}</p>{% else %}
<h1>{{ method_name or "Vali autentimisviis" }}</h1>
<p>See on riigi autentimisteenuse (TARA) arenduskeskkonna asendaja: päris isikutuvastust ei
toimu. Vali testisik.</p>
<form method="post" action="{{ action }}">
<input type="hidden" name="request_id" value="{{ request_id }}">
{% if not method %}<label>Autentimisviis
<select name="method">{% for m, n in methods %}<option value="{{ m }}">{{ n }}</option>{% endfor %}
</select></label>{% endif %}
<p>Testisikud:</p>
{% for p in people %}
<button type="submit" name="isikukood" value="{{ p.isikukood }}">
{{ p.given_name }} {{ p.family_name }} ({{ p.isikukood }})</button><br>
{% endfor %}
</form>
<form method="post" action="{{ action }}">
<input type="hidden" name="request_id" value="{{ request_id }}">
{% if not method %}<input type="hidden" name="method" value="idcard">{% endif %}
<label for="isikukood">Muu isikukood</label>
<input id="isikukood" name="isikukood" inputmode="numeric">
<label for="given_name">Eesnimi</label><input id="given_name" name="given_name" value="Test">
<label for="family_name">Perekonnanimi</label>
<input id="family_name" name="family_name" value="Isik">
<button type="submit">Autendi</button>
</form>
<form method="post" action="{{ action }}">
<input type="hidden" name="request_id" value="{{ request_id }}">
<button type="submit" name="cancel" value="1">Katkesta</button></form>
{% endif %}
</body></html>"""


def _refuse_production() -> None:
    if is_production():
        raise ConfigError(
            "the eID stand-in is for development only; it refuses to start when "
            "STUUDIUM_ENV=production (use the real TARA: EID_ISSUER)"
        )


def create_standin(
    issuer: str,
    clients: dict[str, tuple[str, list[str]]],
    people: list[EidPerson],
    tamper: Tamper | None = None,
) -> Flask:
    """Build the stand-in app; refuses a production environment."""
    _refuse_production()
    app = Flask(__name__)
    state = StandIn(issuer.rstrip("/"), clients, people, tamper)
    app.extensions["eid_standin"] = state

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["X-Environment"] = "development stand-in, not for production"
        resp.headers.setdefault("X-Frame-Options", "DENY")
        return resp

    @app.get("/")
    def home() -> str:
        return render_template_string(
            _PAGE,
            banner=BANNER,
            error=("Siin pole midagi vaadata: sisselogimine algab Stuudium ID lehelt."),
        )

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Response:
        return jsonify(
            {
                "issuer": state.issuer,
                "authorization_endpoint": state.issuer + "/oidc/authorize",
                "token_endpoint": state.issuer + "/oidc/token",
                "jwks_uri": state.issuer + "/oidc/jwks",
                "scopes_supported": ["openid", "idcard", "mid", "smartid"],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "profile_attributes", "amr", "acr", "nonce", "state"],
                "x_environment": BANNER,
            }
        )

    @app.get("/oidc/jwks")
    def jwks() -> Response:
        public = state.key.as_dict(private=False)
        return jsonify({"keys": [{**public, "kid": state.kid, "use": "sig", "alg": "RS256"}]})

    @app.get("/oidc/authorize")
    def authorize() -> Any:
        args = request.args
        registered = state.clients.get(args.get("client_id", ""))
        if registered is None or args.get("redirect_uri") not in registered[1]:
            return render_template_string(
                _PAGE, banner=BANNER, error=("Tundmatu klient või tagasisuunamise aadress.")
            ), 400
        scopes = (args.get("scope") or "").split()
        method = next((m for m in METHODS if m in scopes), None)
        if args.get("response_type") != "code" or "openid" not in scopes:
            return _back(args["redirect_uri"], args.get("state"), error="invalid_request")
        request_id = secrets.token_urlsafe(16)
        with state.lock:
            state.requests[request_id] = {
                "client_id": args["client_id"],
                "redirect_uri": args["redirect_uri"],
                "state": args.get("state"),
                "nonce": args.get("nonce"),
                "method": method,
                "challenge": args.get("code_challenge"),
                "at": time.time(),
            }
        return render_template_string(
            _PAGE,
            banner=BANNER,
            error=None,
            request_id=request_id,
            method=method,
            method_name=METHOD_NAMES.get(method or ""),
            methods=METHOD_NAMES.items(),
            people=state.people,
            action=state.issuer + "/oidc/authorize/confirm",
        )

    @app.post("/oidc/authorize/confirm")
    def confirm() -> Any:
        with state.lock:
            pending = state.requests.pop(request.form.get("request_id", ""), None)
        if pending is None:
            return render_template_string(_PAGE, banner=BANNER, error="Päring aegus."), 400
        if request.form.get("cancel"):
            return _back(pending["redirect_uri"], pending["state"], error="user_cancel")
        code_ = (request.form.get("isikukood") or "").strip()
        method = pending["method"] or request.form.get("method")
        if not ik.is_valid(code_) or method not in METHODS:
            return render_template_string(
                _PAGE, banner=BANNER, error=("See ei ole kehtiv isikukood.")
            ), 400
        person = next((p for p in state.people if p.isikukood == code_), None) or EidPerson(
            code_,
            request.form.get("given_name") or "Test",
            request.form.get("family_name") or "Isik",
        )
        code = secrets.token_urlsafe(24)
        with state.lock:
            state.codes[code] = {**pending, "method": method, "person": person, "at": time.time()}
        return _back(pending["redirect_uri"], pending["state"], code=code)

    @app.post("/oidc/token")
    def token() -> Any:
        auth = request.authorization
        registered = state.clients.get(auth.username or "") if auth else None
        if (
            auth is None
            or registered is None
            or not secrets.compare_digest(auth.password or "", registered[0])
        ):
            return jsonify({"error": "invalid_client"}), 401
        with state.lock:
            grant = state.codes.pop(request.form.get("code", ""), None)
        if (
            grant is None
            or grant["client_id"] != auth.username
            or time.time() - grant["at"] > CODE_SECONDS
            or request.form.get("grant_type") != "authorization_code"
            or request.form.get("redirect_uri") != grant["redirect_uri"]
            or not _pkce_ok(grant.get("challenge"), request.form.get("code_verifier"))
        ):
            return jsonify({"error": "invalid_grant"}), 400
        access = secrets.token_urlsafe(32)
        return jsonify(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": ID_TOKEN_SECONDS,
                "id_token": state.id_token(grant, access),
            }
        )

    return app


def _pkce_ok(challenge: str | None, verifier: str | None) -> bool:
    if challenge is None:
        return verifier is None
    if not verifier:
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return secrets.compare_digest(digest.decode(), challenge)


def _back(redirect_uri: str, state: str | None, **params: str) -> Response:
    if state is not None:
        params["state"] = state
    if not redirect_uri:
        abort(400)
    return redirect(redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params), 303)


def demo_people() -> list[EidPerson]:
    """The demo people of `make run` and TARA's well-known test person (who has no account)."""
    from deploy.dev.seed import DEMO_PEOPLE

    people = [EidPerson(code, given, family) for _e, given, family, code, _m, _l in DEMO_PEOPLE]
    return [*people, EidPerson("60001019906", "Mary Änn", "O’Connež-Šuslik Testnumber")]


def dev_app() -> Flask:
    """The stand-in as `make run` serves it, registered for the IdP's development client."""
    from idp.config import DEV_EID_CLIENT_ID, DEV_EID_CLIENT_SECRET

    issuer = env_str("EID_STANDIN_ISSUER", f"http://localhost:{PORT}") or ""
    redirect = env_str("EID_REDIRECT_URI", "http://localhost:5000/eid/callback") or ""
    return create_standin(
        issuer, {DEV_EID_CLIENT_ID: (DEV_EID_CLIENT_SECRET, [redirect])}, demo_people()
    )


def main() -> None:
    """python -m deploy.dev.eid_standin [PORT]: serve the stand-in on loopback."""
    from werkzeug.serving import make_server

    try:
        app = dev_app()
    except ConfigError as exc:
        print(f"eID stand-in: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    port = int(sys.argv[1]) if len(sys.argv) > 1 else PORT
    make_server("localhost", port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
