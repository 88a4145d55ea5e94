"""Structured JSON logs with a request id (X-Request-Id in and out). An access line names the
route's pattern (`/s/<slug>/signin`), never the path or query a token or code may be in."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
import traceback
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from shared.metrics import REQUESTS

REQUEST_ID = "X-Request-Id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access_log = logging.getLogger("stuudium.access")


def request_id() -> str | None:
    """The current request's id."""
    return g.get("request_id") if has_request_context() else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    FIELDS = ("method", "route", "status", "duration_ms", "app")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id()
        if rid:
            entry["request_id"] = rid
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type and where it was raised, never its message: a database
            # error's message quotes the statement's parameters (a personal code, a token).
            entry["error"] = record.exc_info[0].__name__
            entry["stack"] = [
                f"{f.filename}:{f.lineno} {f.name}"
                for f in traceback.extract_tb(record.exc_info[2])
            ]
        return json.dumps(entry, ensure_ascii=False)


def configure(fmt: str) -> None:
    """Send the process's logs to stderr, as JSON lines when fmt is json (once per process)."""
    root = logging.getLogger()
    if any(getattr(h, "_stuudium", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    handler._stuudium = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if root.level == logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def init_app(app: Flask) -> None:
    """Give every request an id and log one access line for it."""
    if app.config.get("LOG_FORMAT"):
        configure(app.config["LOG_FORMAT"])

    @app.before_request
    def _start() -> None:
        g.request_id = new_request_id(request.headers.get(REQUEST_ID, ""))
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        rid = g.get("request_id")
        if rid is None:
            return response
        response.headers.add(REQUEST_ID, rid)  # no view sets it; add does not scan
        rule = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        record_access(app.name, request.method, rule, response.status_code, g.request_started)
        return response


def new_request_id(given: str) -> str:
    """The id a request goes by: the one it brought when it looks like an id, else a new one."""
    return given if _SAFE_ID.match(given) else secrets.token_hex(8)


def record_access(
    app: str, method: str, rule: str, status: int, started: float, rid: str | None = None
) -> None:
    """Count a request and log its access line (rid: when no request context holds it)."""
    REQUESTS.labels(app, rule, str(status)).inc()
    fields: dict[str, Any] = {
        "app": app,
        "method": method,
        "route": rule,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    if rid is not None:
        fields["request_id"] = rid
    access_log.info("%s %s %s", method, rule, status, extra=fields)
