"""What both apps set up the same way: configuration order, Redis, database, security, i18n."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.config import Config
from flask import Flask
from flask_babel import Babel

from shared import db, i18n, roles, security
from shared.config import env_int, env_str, is_production, var_dir
from shared.flask_session import LeanSessionInterface
from shared.redis import connect, embedded_url


def ops_config() -> dict[str, Any]:
    """Settings both apps read the same way: proxies trusted, log format, metrics scrapers."""
    return {
        "PROXY_COUNT": env_int("STUUDIUM_PROXY_COUNT", 0),
        "LOG_FORMAT": env_str("STUUDIUM_LOG_FORMAT", "json" if is_production() else None),
        "METRICS_ALLOW": env_str("METRICS_ALLOW"),
    }


def build_app(
    name: str,
    config: dict[str, Any],
    test_config: dict[str, Any] | None,
    select_locale: Callable[[], str],
) -> Flask:
    """Create a Flask app: defaults, then the environment, then test overrides; then services."""
    app = Flask(name)
    app.session_interface = LeanSessionInterface()
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(ops_config())
    app.config.update(config)
    if test_config:
        app.config.update(test_config)
    if not app.config.get("REDIS_URL"):
        app.config["REDIS_URL"] = embedded_url(var_dir())
    app.extensions["redis"] = connect(app.config["REDIS_URL"])
    db.init_app(app)
    security.init_app(app)
    i18n.init_app(app)
    app.jinja_env.filters["role_name"] = roles.role_name
    Babel(app, locale_selector=select_locale)
    return app


def upgrade_schema(app: Flask, migrations: Path) -> None:
    """Apply an app's Alembic migrations to head on the app's own engine."""

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.attributes["engine"] = app.extensions["db_engine"]
    command.upgrade(cfg, "head")


def add_db_commands(main: click.Group, upgrade: Callable[[], None]) -> None:
    """Give an app's command line `db upgrade`, which runs upgrade (the app's migrations and
    whatever that app adds after them) and says so."""

    @main.group()
    def db() -> None:
        """Database schema."""

    @db.command("upgrade")
    def db_upgrade() -> None:
        """Migrate the schema to the newest version."""
        upgrade()
        click.echo("database is up to date")
