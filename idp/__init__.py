"""Stuudium ID identity provider: create_app builds the Flask application."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from flask import Flask, abort, current_app, g, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from idp.config import load_config
from idp.keys import KeyStore, key_encryption
from shared import i18n, ops
from shared.app import build_app

LOCALES = i18n.LOCALES


def select_locale() -> str:
    """The page's language, in order: the signed-in person's choice (Person.locale), this
    browser's choice (the switch's cookie), ui_locales of the request (or of the authorization
    request a login page serves), the school's default, the browser's Accept-Language, Estonian.
    Each source is read only when the ones before it gave nothing."""
    sources: tuple[Callable[[], str | None], ...] = (
        _person_choice, i18n.visitor_choice, _ui_locales, _school_default, i18n.browser_language)
    if g.get("page_locale"):  # a page whose language is known (the one applied in)
        sources = (_person_choice, i18n.visitor_choice, lambda: g.page_locale)
    return i18n.first(_quietly(source) for source in sources)


def _quietly(source: Callable[[], str | None]) -> str | None:
    # The page saying the storage is unavailable must render without it: a source that needs
    # SQL or Redis then gives nothing.
    try:
        return source()
    except (SQLAlchemyError, redis.RedisError):
        return None


def _person_choice() -> str | None:
    person = g.get("person")
    if person is None:
        from idp import sessions
        from idp.models import Person
        from shared.db import get_db

        live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
        person = get_db().get(Person, live.person_id) if live is not None else None
    return str(person.locale) if person is not None else None


def _pending() -> dict[str, Any] | None:
    """The authorization request a login page serves (by its ix), if any."""
    try:
        ix = request.values.get("ix")
    except RequestEntityTooLarge:  # the 413 page itself must not parse the oversized body
        return None
    if not ix:
        return None
    from idp.oidc import interactions

    cached = g.get("interaction")  # the login view's, already read in this request
    pending = cached[1] if cached is not None and cached[0] == ix else interactions.load(ix)
    return pending


def _ui_locales() -> str | None:
    try:
        requested = request.values.get("ui_locales")
    except RequestEntityTooLarge:
        requested = None
    if not requested:
        pending = _pending()
        requested = pending["request"]["params"].get("ui_locales") if pending else None
    return i18n.supported(requested)


def _school_default() -> str | None:
    """The default language of the school the page is for: /s/<slug>/… or the login's client."""
    from idp.models import School
    from shared.db import get_db

    slug = (request.view_args or {}).get("slug")
    if isinstance(slug, str):
        return get_db().scalar(select(School.default_locale).where(School.slug == slug))
    pending = _pending()
    school_id = pending["request"].get("school_id") if pending else None
    if school_id is not None:
        return get_db().scalar(select(School.default_locale).where(School.id == school_id))
    return None


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
    from idp.views import (
        access,
        account,
        apply,
        email,
        errors,
        link,
        locale,
        login,
        password,
        schools,
    )

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
    app.register_blueprint(locale.bp)
    return app
