"""SQLAlchemy engine and one session per request; views never commit, the request does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every model."""


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given in the libpq form."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so several processes can share it."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def init_app(app: Flask) -> None:
    """Attach the engine and the per-request session lifecycle to the app."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db_engine"] = engine
    app.extensions["db_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)

    @app.after_request
    def _commit(response: Response) -> Response:
        db: Session | None = g.pop("_db", None)
        if db is not None:
            try:
                if response.status_code < 400:
                    db.commit()
                else:
                    db.rollback()
            finally:
                db.close()
        return response

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        db: Session | None = g.pop("_db", None)
        if db is not None:
            db.rollback()
            db.close()


def get_db() -> Session:
    """Return the request's session, opening it on first use."""
    if "_db" not in g:
        g._db = current_app.extensions["db_sessionmaker"]()
    db: Session = g._db
    return db


@contextmanager
def separate_transaction() -> Iterator[Session]:
    """Run work that must commit even when the request ends in an error (reuse revocation)."""
    db: Session = current_app.extensions["db_sessionmaker"]()
    try:
        yield db
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        db.close()
