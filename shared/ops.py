"""What operations need from both apps: health, metrics, request ids and logs, proxy headers."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from shared import health, logs, metrics

# Answered on any host, before a tenant is looked up.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def init_app(
    app: Flask, migrations: Path, version_table: str, gauges: metrics.Gauges | None = None
) -> None:
    """Register the ops endpoints and hooks; trust X-Forwarded-* only from PROXY_COUNT proxies."""
    health.init_app(app, migrations, version_table)
    metrics.init_app(app, gauges)
    logs.init_app(app)
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies:
        # Each trusted proxy appends one address: the client is the one before ours, and a
        # client's own X-Forwarded-* beyond that count is ignored.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
