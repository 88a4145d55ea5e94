"""Stuudium ID identity provider: create_app builds the Flask application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, abort, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from idp.config import load_config
from idp.keys import KeyStore, key_encryption
from shared import ops
from shared.app import build_app

LOCALES = ("et", "ru", "en")


def select_locale() -> str:
    """Pick the page language: ui_locales of the request (or of the authorization request a
    login page serves), then the browser's, else Estonian."""
    try:
        requested = request.values.get("ui_locales")
        ix = request.values.get("ix")
    except RequestEntityTooLarge:  # the 413 page itself must not parse the oversized body
        requested = ix = None
    if not requested and ix:
        from idp.oidc import interactions

        cached = g.get("interaction")  # the login view's, already read in this request
        pending = cached[1] if cached is not None and cached[0] == ix else interactions.load(ix)
        requested = pending["request"]["params"].get("ui_locales") if pending else None
    for tag in (requested or "").split():
        base = tag.split("-")[0].lower()
        if base in LOCALES:
            return base
    return request.accept_languages.best_match(LOCALES) or "et"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the IdP application: defaults, then the environment, then test overrides."""
    app = build_app(__name__, load_config(), test_config, select_locale)
    app.extensions["keys"] = KeyStore(key_encryption(app.config["KEY_ENCRYPTION_KEYS"]),
                                      app.config["KEY_CACHE_SECONDS"])

    @app.before_request
    def _limit_query() -> None:
        if len(request.query_string) > app.config["MAX_QUERY_LENGTH"]:
            abort(414)

    from idp.metrics import gauges

    ops.init_app(app, Path(__file__).parent / "migrations", "alembic_version", gauges)

    from idp import admin_api, admin_applications, admin_openapi, admin_people  # noqa: F401
    from idp.eid import views as eid_views
    from idp.oidc import endpoints
    from idp.views import access, account, apply, email, errors, link, login, password, schools

    errors.init_app(app)
    endpoints.init_app(app)
    app.register_blueprint(login.bp)
    app.register_blueprint(schools.bp)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(admin_applications.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(password.bp)
    app.register_blueprint(link.bp)
    eid_views.init_app(app)
    app.register_blueprint(access.bp)
    app.register_blueprint(apply.bp)
    app.register_blueprint(email.bp)
    return app
