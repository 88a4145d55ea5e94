"""The multi-tenant school e-diary, an OIDC client of Stuudium ID per school."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from flask_babel import Babel, get_locale

from school_instance.config import load_config
from shared import db, security
from shared.config import var_dir
from shared.redis import connect, embedded_url

LOCALES = ("et", "ru", "en")


def select_locale() -> str:
    """The school's default language unless the browser prefers another we have."""
    tenant = g.get("tenant")
    best = request.accept_languages.best_match(LOCALES)
    if tenant is not None and not best:
        return str(tenant.default_locale)
    return best or "et"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the school instance: defaults, then the environment, then test overrides."""
    app = Flask(__name__)
    app.config.update(load_config())
    if test_config:
        app.config.update(test_config)
    if not app.config.get("REDIS_URL"):
        app.config["REDIS_URL"] = embedded_url(var_dir())
    app.extensions["redis"] = connect(app.config["REDIS_URL"])
    db.init_app(app)
    security.init_app(app)

    @app.after_request
    def _issuer_images(response: Response) -> Response:
        """Other schools' logos in the navigation bar are served by the IdP: allow its origin."""
        tenant = g.get("tenant")
        if tenant is not None:
            issuer = urlsplit(tenant.issuer)
            response.headers.setdefault("Content-Security-Policy", security.content_security_policy(
                f"{issuer.scheme}://{issuer.netloc}"))
        return response

    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale() or "et")

    from school_instance import sso, tenancy, views

    tenancy.init_app(app)
    app.before_request(sso.load_session)
    app.register_blueprint(sso.bp)
    views.init_app(app)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app
