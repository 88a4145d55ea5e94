"""Prometheus exposition at /metrics: the process's (or, under gunicorn with
PROMETHEUS_MULTIPROC_DIR, every worker's) counters plus gauges an app reads at scrape time.

Without PROMETHEUS_MULTIPROC_DIR each process counts for itself: right for one process
(`make run`, a pod with one worker), wrong behind gunicorn, whose workers would each answer
with their own share — deploy/gunicorn.conf.py therefore always sets the directory."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable

from flask import Flask, Response, abort, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

# Scrapers live on loopback or the cluster's private network; public clients never reach
# /metrics even when a proxy forwards the path by mistake (the proxies also refuse it).
DEFAULT_ALLOW = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"

# By the route's pattern (a bounded set), so a school's logins (/auth/callback), events
# (/auth/events) and back-channel logouts show by status without counters of their own.
REQUESTS = Counter(
    "stuudium_http_requests_total",
    "HTTP requests by app, route and status.",
    ["app", "route", "status"],
)

Gauges = Callable[[Flask], Iterable[Metric]]


class _ScrapeTime:
    """Collector of the gauges an app computes when scraped (cheap SQL counts)."""

    def __init__(self, app: Flask, gauges: Gauges) -> None:
        self.app, self.gauges = app, gauges

    def describe(self) -> list[Metric]:
        return []  # nothing to check for clashes, and no query when registered

    def collect(self) -> Iterable[Metric]:
        with self.app.app_context():
            yield from self.gauges(self.app)


def allowed_networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse a comma-separated list of networks."""
    return tuple(ipaddress.ip_network(part.strip()) for part in spec.split(",") if part.strip())


def init_app(app: Flask, gauges: Gauges | None = None) -> None:
    """Register /metrics, answered only to the configured networks."""
    networks = allowed_networks(
        app.config.get("METRICS_ALLOW") or os.environ.get("METRICS_ALLOW") or DEFAULT_ALLOW
    )
    scrape = CollectorRegistry()
    if gauges is not None:
        scrape.register(_ScrapeTime(app, gauges))  # type: ignore[arg-type]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
    else:
        counted = REGISTRY

    @app.get("/metrics")
    def metrics() -> Response:
        try:
            address = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            abort(404)
        if not any(address in net for net in networks):
            abort(404)
        body = generate_latest(counted) + generate_latest(scrape)
        return Response(
            body,
            mimetype=CONTENT_TYPE_LATEST.split(";")[0],
            headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
        )
