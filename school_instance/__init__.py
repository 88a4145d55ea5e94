"""The multi-tenant school e-diary: one deployment serves every school (tenancy: the school by
its host), each school an OIDC client of Stuudium ID (sso, provider), with its own copies of
people kept in sync by the IdP's events (sync), its storage contract in Redis (sessions), the
tenant admin API client (admin_api) and the diary itself (diary/). Imports shared/ and never
idp/: it knows the IdP only over HTTP (import-linter checks it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g

from school_instance import sso, sync, tenancy, views  # noqa: F401 (sync: its route)
from school_instance.config import load_config
from shared import i18n, ops, security
from shared.app import build_app

LOCALES = i18n.LOCALES


def select_locale() -> str:
    """The page's language, in order: the signed-in person's choice (the locale claim, kept in
    the session), this browser's choice (the switch's cookie), the browser's Accept-Language
    (a first visit reads the language the browser asks for), the school's default, Estonian."""
    user, tenant = g.get("user"), g.get("tenant")
    return i18n.first(
        (
            user.get("locale") if user else None,
            i18n.visitor_choice(),
            i18n.browser_language(),
            str(tenant.default_locale) if tenant is not None else None,
        )
    )


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the school instance: defaults, then the environment, then test overrides."""
    app = build_app(__name__, load_config(), test_config, select_locale)

    @app.after_request
    def _issuer_images(response: Response) -> Response:
        """Other schools' logos in the navigation bar are served by the IdP: allow its origin."""
        tenant = g.get("tenant")
        if tenant is not None:
            issuer = urlsplit(tenant.issuer)
            response.headers.setdefault(
                "Content-Security-Policy",
                security.content_security_policy(f"{issuer.scheme}://{issuer.netloc}"),
            )
        return response

    ops.init_app(app, Path(__file__).parent / "migrations", "diary_alembic_version")
    tenancy.init_app(app)
    app.before_request(sso.load_session)
    app.register_blueprint(sso.bp)
    views.init_app(app)

    return app
