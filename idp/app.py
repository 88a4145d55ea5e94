"""create_app: the IdP's Flask application, wired from its parts (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, abort, request

from idp.admin import api as admin_api
from idp.admin import applications as admin_applications
from idp.admin import openapi, people  # noqa: F401  (their routes are on admin_api.bp)
from idp.config import load_config
from idp.dispatch import deliveries
from idp.metrics import gauges
from idp.oidc import endpoints
from idp.oidc.keys import KeyStore, key_encryption
from idp.oidc.token_lane import TokenLane
from idp.store import limits
from idp.views import (
    access,
    account,
    apply,
    eid,
    email,
    errors,
    link,
    locale,
    login,
    logout_page,
    password,
    schools,
)
from shared import ops
from shared.app import build_app


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the IdP application: defaults, then the environment, then test overrides."""
    app = build_app("idp", load_config(), test_config, locale.select_locale)
    app.extensions["keys"] = KeyStore(
        key_encryption(app.config["KEY_ENCRYPTION_KEYS"]), app.config["KEY_CACHE_SECONDS"]
    )

    @app.before_request
    def _limit_query() -> None:
        if len(request.query_string) > app.config["MAX_QUERY_LENGTH"]:
            abort(414)

    # Inside the proxy fix (ops.init_app wraps what is there): the lane sees the client's scheme.
    app.wsgi_app = TokenLane(app, app.wsgi_app)  # type: ignore[method-assign]
    ops.init_app(app, Path(__file__).parent / "migrations", "alembic_version", gauges)
    limits.init_app(app)
    deliveries.init_app(app)
    errors.init_app(app)
    endpoints.init_app(app)
    for blueprint in (
        login.bp,
        logout_page.bp,
        schools.bp,
        admin_api.bp,
        admin_applications.bp,
        account.bp,
        password.bp,
        link.bp,
        access.bp,
        apply.bp,
        email.bp,
        locale.bp,
    ):
        app.register_blueprint(blueprint)
    eid.init_app(app)
    return app
