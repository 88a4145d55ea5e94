"""Storage failures a person or a client can meet (PostgreSQL or Redis away, failing over or
read-only for a moment): every one is answered with 503 and Retry-After — a page for a person,
`{"error": "temporarily_unavailable"}` for a client — and logged as one line, never a 500 with
a stack trace. What the request did is committed whole or not at all (shared/db.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
import redis
from flask import Flask, jsonify, request
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from werkzeug.wrappers import Response

from shared.db import COMMIT_FAILED

log = logging.getLogger(__name__)

# SQL: the server is gone, restarting or refusing (OperationalError), the connection broke
# under the driver (InterfaceError), the pool could not get a live one (DisconnectionError);
# psycopg's own two where the token path runs outside SQLAlchemy (db.HotConnections).
# Redis: no connection or no answer in time (ConnectionError, TimeoutError; a failover's
# "previous master is now a replica" is one), a write on a replica (ReadOnlyError).
FAILURES: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    psycopg.OperationalError,  # the same, met on the token path's own connections (db.py)
    psycopg.InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
    redis.ReadOnlyError,
)
RETRY_AFTER = "30"
# The OAuth error body a client gets.
UNAVAILABLE = {
    "error": "temporarily_unavailable",
    "error_description": "The service is briefly unavailable; try again shortly.",
}


def install(app: Flask, page: Callable[[], Response], api_paths: tuple[str, ...] = ()) -> None:
    """Answer every storage failure of app, in a view or in the commit after it, with page()
    (503), or for a request under one of api_paths with the OAuth error body."""

    def answer(exc: Exception) -> Response:
        log.warning(
            "storage unavailable: %s on %s %s", type(exc).__name__, request.method, request.path
        )
        resp: Response
        if api_paths and request.path.startswith(api_paths):
            resp = jsonify(UNAVAILABLE)
            resp.status_code = 503
            resp.headers["Cache-Control"] = "no-store"
        else:
            resp = page()
            resp.status_code = 503
        resp.headers["Retry-After"] = RETRY_AFTER
        return resp

    for failure in FAILURES:
        app.register_error_handler(failure, answer)
    app.extensions[COMMIT_FAILED] = answer
