"""SQLAlchemy engine and the rule for transactions: a unit of work per request.

Each request has one session (get_db). What a view changes is committed once, after the view
returned, by the request (the after-request hook below); an answer of 400 or more rolls it back.
Views never commit. A service commits its work itself only at a commit point: where something
outside SQL must follow the commit (a Redis write, a delivery or mail attempt, a lock that must
end) — sessions.create before the session's Redis copy, end_sessions before Redis and the
logout messages, a merge with its sessions' end — and says so in its docstring. Work that must
commit even when the request fails (reuse revocation, counters' bookkeeping) runs in a
separate_transaction. A commit that fails after the view answers like every storage failure
(the app's registered failure page, 503), never half-done: the transaction is rolled back.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from flask import Flask, Response, current_app, g
from psycopg.pq import TransactionStatus
from sqlalchemy import DateTime, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every model."""


def utcnow() -> dt.datetime:
    """Return the current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class TZDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored with its zone; SQLite gives naive values back, read as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        """Attach UTC to naive values SQLite returns."""
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    def process_bind_param(self, value: Any, dialect: Any) -> dt.datetime | None:
        """Store UTC."""
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return (
                value.astimezone(dt.UTC)
                if dialect.name != "sqlite"
                else value.astimezone(dt.UTC).replace(tzinfo=None)
            )
        return value


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
    engine = create_engine(url, pool_size=10, max_overflow=20)
    _ping_when_idle(engine)
    return engine


# A pooled connection unused for this long is pinged before use (a restarted or failed-over
# server drops idle connections). One used moments ago is not: on a busy hot path the ping
# would be one round trip in five.
PING_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping pooled connections on checkout only when they have been idle a while."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_SECONDS:
            return
        try:
            ok = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure means a dead connection: the pool reconnects
            raise DisconnectionError() from exc
        if not ok:
            raise DisconnectionError()


# app.extensions key: the response to a commit that failed after the view (a 503 page).
COMMIT_FAILED = "db.commit_failed"
# app.extensions key: the process's HotConnections (PostgreSQL only).
HOT = "db.hot"


class HotConnections:
    """A process's own PostgreSQL connections (psycopg, autocommit) for the token endpoint's
    statements, outside SQLAlchemy: its session, pool checkout and result machinery cost more
    CPU than a code exchange's one statement. A stack of idle connections, pinged before use
    after PING_IDLE_SECONDS idle like the pool's; a broken one is closed, never given back;
    a forked child never uses its parent's."""

    def __init__(self, conninfo: str, keep: int = 4) -> None:
        self._conninfo = conninfo
        self._keep = keep
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []
        self._inherited: list[tuple[psycopg.Connection[Any], float]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def acquire(self) -> psycopg.Connection[Any]:
        """An idle connection known to be alive, or a new one."""
        with self._lock:
            if self._pid != os.getpid():
                # The parent's connections stay referenced, never closed here: closing (or
                # collecting) one would end the parent's session on the socket they share.
                self._inherited.extend(self._idle)
                self._idle, self._pid = [], os.getpid()
            item = self._idle.pop() if self._idle else None
        if item is not None:
            conn, since = item
            if time.monotonic() - since < PING_IDLE_SECONDS or _answers(conn):
                return conn
            conn.close()
        return psycopg.connect(self._conninfo, autocommit=True)

    def release(self, conn: psycopg.Connection[Any]) -> None:
        """Give a connection back; one broken or still in a transaction is closed."""
        idle = conn.info.transaction_status == TransactionStatus.IDLE
        if not conn.closed and not conn.broken and idle:
            with self._lock:
                if self._pid == os.getpid() and len(self._idle) < self._keep:
                    self._idle.append((conn, time.monotonic()))
                    return
        conn.close()

    def close(self) -> None:
        """Close every idle connection (the app is going away)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _since in idle:
            conn.close()


@functools.lru_cache(maxsize=256)
def psycopg_sql(sql: str) -> str:
    """A statement with :name parameters (SQLAlchemy's text()) in psycopg's %(name)s style."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql.replace("%", "%%"))


def _answers(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection still answers (a failed-over server dropped it)."""
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def hot_connection() -> psycopg.Connection[Any] | None:
    """The request's hot connection (autocommit: each statement commits as itself; one that
    must commit with the request would open a transaction with BEGIN, which the request's end
    commits or rolls back like its session), or None on SQLite, where the request's session
    serves."""
    hot: HotConnections | None = current_app.extensions.get(HOT)
    if hot is None:
        return None
    conn: psycopg.Connection[Any] | None = g.get("_hot")
    if conn is None:
        conn = g._hot = hot.acquire()
    return conn


def open_hot_connection() -> psycopg.Connection[Any] | None:
    """The request's hot connection if it has taken one, else None."""
    return g.get("_hot")


def _end_hot(conn: psycopg.Connection[Any], commit: bool) -> None:
    """Commit or roll back what the request's hot connection holds open, and give it back."""
    try:
        if conn.info.transaction_status == TransactionStatus.INTRANS:
            conn.commit() if commit else conn.rollback()
    finally:
        current_app.extensions[HOT].release(conn)


def init_app(app: Flask) -> None:
    """Attach the engine and the per-request session lifecycle to the app."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db_engine"] = engine
    # An app dropped before its process ends (a CLI command's, a test's) closes its pooled
    # connections instead of leaving them to the collector.
    weakref.finalize(app, engine.dispose)
    app.extensions["db_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    if engine.dialect.name == "postgresql":
        hot = HotConnections(
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        )
        app.extensions[HOT] = hot
        weakref.finalize(app, hot.close)

    @app.after_request
    def _commit(response: Response) -> Response:
        try:
            end_unit(response.status_code < 400)
        except (psycopg.Error, SQLAlchemyError, DBAPIError) as exc:
            failed = current_app.extensions.get(COMMIT_FAILED)
            if failed is None:
                raise
            return failed(exc)
        return response

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        conn: psycopg.Connection[Any] | None = g.pop("_hot", None)
        if conn is not None:
            try:
                _end_hot(conn, commit=False)
            except psycopg.Error:
                conn.close()
        db: Session | None = g.pop("_db", None)
        if db is not None:
            _discard(db)


def end_unit(commit: bool) -> None:
    """End the request's unit of work: commit (or roll back) its hot connection's transaction,
    then its session's, and give both back. A commit that fails is rolled back and raised."""
    conn: psycopg.Connection[Any] | None = g.pop("_hot", None)
    if conn is not None:
        _end_hot(conn, commit)
    db: Session | None = g.pop("_db", None)
    if db is None:
        return
    try:
        if commit:
            db.commit()
        else:
            db.rollback()
    finally:
        _discard(db)


def _discard(db: Session) -> None:
    """End a request's session: roll back what is open and give the connection back. On a
    connection that broke (the server went away) the rollback fails too: the connection is
    invalidated, never reused, and the request's answer stands."""
    try:
        db.rollback()
        db.close()
    except (SQLAlchemyError, DBAPIError):
        db.invalidate()


def row_locks(db: Session) -> bool:
    """Whether the database takes row locks (PostgreSQL: FOR UPDATE, SKIP LOCKED, NOTIFY);
    SQLite serialises writers instead, so the statements that lock run there without it."""
    return db.bind is not None and db.bind.dialect.name == "postgresql"


def get_db() -> Session:
    """Return the request's session, opening it on first use."""
    if "_db" not in g:
        g._db = current_app.extensions["db_sessionmaker"]()
    db: Session = g._db
    return db


def get_reader() -> Session:
    """Return the request's session in autocommit mode, for a request that only reads (or
    whose writes are single statements): each statement is its own transaction, so a read is
    one round trip instead of three (BEGIN, the query, COMMIT). Call it before the request's
    first query; once a transaction is open, the request keeps it."""
    db = get_db()
    if not db.in_transaction():
        db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return db


def autocommit_row(
    sql: str, params: Mapping[str, Any], *, writes: bool = False
) -> tuple[Any, ...] | None:
    """Run one statement (SQL text with :name parameters, written once for both databases) as
    its own transaction and return its first row, if it returns rows: on the request's hot
    connection (PostgreSQL), else on its reader session (SQLite), committed there when it
    writes. JSON values are passed already serialised."""
    hot = hot_connection()
    if hot is not None:
        cur = hot.execute(psycopg_sql(sql), params)
        return cur.fetchone() if cur.description else None
    db = get_reader()
    result = db.connection().execute(text(sql), params)
    row = result.first() if result.returns_rows else None
    if writes:
        db.commit()
    return None if row is None else tuple(row)


@contextmanager
def own_statement() -> Iterator[Connection]:
    """A connection of its own in autocommit mode, for a single statement that must neither
    wait for the request's transaction nor hold its row locks until the request ends (the SSO
    session's last_seen stamp and its read from SQL on a Redis miss)."""
    engine: Engine = current_app.extensions["db_engine"]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


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
