"""Liveness and readiness: /healthz answers while the process runs, /readyz only when
PostgreSQL (or SQLite) and Redis answer and the schema is at the migrations' head."""

from __future__ import annotations

from pathlib import Path

import redis
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Flask, Response, current_app, jsonify
from sqlalchemy import column, select, table
from sqlalchemy.exc import SQLAlchemyError


def migration_heads(migrations: Path) -> frozenset[str]:
    """The head revisions of an app's Alembic scripts (read once, at start)."""

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


def _database(version_table: str, heads: frozenset[str]) -> tuple[str, str]:
    """(database, migrations) check results."""
    engine = current_app.extensions["db_engine"]
    try:
        with engine.connect() as conn:
            found = frozenset(
                conn.execute(
                    select(column("version_num")).select_from(table(version_table))
                ).scalars()
            )
    except SQLAlchemyError as exc:
        # A missing version table is a reachable database that was never migrated.
        reachable = "no such table" in str(exc) or "does not exist" in str(exc)
        return ("ok", "behind") if reachable else (f"unreachable: {type(exc).__name__}", "unknown")
    return "ok", "ok" if found == heads else "behind"


def _redis() -> str:
    try:
        current_app.extensions["redis"].ping()
    except redis.RedisError as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def init_app(app: Flask, migrations: Path, version_table: str) -> None:
    """Register /healthz and /readyz."""
    heads = migration_heads(migrations)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz() -> Response:
        database, schema = _database(version_table, heads)
        checks = {"database": database, "migrations": schema, "redis": _redis()}
        ready = all(v == "ok" for v in checks.values())
        resp = jsonify({"ready": ready, "checks": checks})
        resp.status_code = 200 if ready else 503
        resp.headers["Cache-Control"] = "no-store"
        return resp
