"""The IdP's metrics: counters the hot paths increment (nothing else there), and the outbox
gauges read with two grouped SQL counts when Prometheus scrapes."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select

from idp.models import Delivery, utcnow
from shared.db import get_db

LOGINS = Counter(
    "stuudium_idp_logins_total", "Logins at the IdP by method and result.", ["method", "result"]
)
TOKENS = Counter(
    "stuudium_idp_tokens_issued_total", "Token responses issued, by grant type.", ["grant"]
)
SSO_JUMPS = Counter(
    "stuudium_idp_sso_jumps_total",
    "Authorization requests answered from an existing SSO session (no login).",
)
SESSION_READS = Counter(
    "stuudium_idp_session_record_reads_total",
    "SSO sessions read from SQL because Redis had no copy (restored), cookies that matched no "
    "live session, and copies found to outlive their session's end (removed).",
    ["outcome"],
)
RATE_LIMITED = Counter(
    "stuudium_idp_rate_limited_total",
    "Requests refused or not acted on because a rate limit was reached.",
    ["limit"],
)
DELIVERY_LATENCY = Histogram(
    "stuudium_idp_delivery_latency_seconds",
    "From queueing a logout message or sync event to the school's confirmation (its _count: "
    "delivered).",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400),
)

GRANTS = frozenset({"authorization_code", "refresh_token", "client_credentials"})
KINDS = {"logout": "logout", "event": "sync"}
UNDELIVERED = ("pending", "failed", "dead")


def gauges(app: Flask) -> Iterable[Metric]:
    """Deliveries not delivered by kind and state, and the sync lag (age of the oldest pending
    event). Delivered ones are counted as they happen (the latency histogram's _count): the
    table keeps every delivered row, these states only a few (the state index finds them)."""
    db = get_db()
    by_state = GaugeMetricFamily(
        "stuudium_idp_deliveries",
        "Outbox rows (logout messages, sync events) not delivered.",
        labels=["kind", "state"],
    )
    counts = {(k, s): 0 for k in KINDS.values() for s in UNDELIVERED}
    for kind, state, n in db.execute(
        select(Delivery.kind, Delivery.state, func.count())
        .where(Delivery.state.in_(UNDELIVERED))
        .group_by(Delivery.kind, Delivery.state)
    ):
        counts[(KINDS.get(kind, kind), state)] = n
    for (kind, state), n in sorted(counts.items()):
        by_state.add_metric([kind, state], n)
    yield by_state
    oldest = db.scalar(
        select(func.min(Delivery.created_at)).where(
            Delivery.kind == "event", Delivery.state == "pending"
        )
    )
    yield GaugeMetricFamily(
        "stuudium_idp_sync_lag_seconds",
        "Age of the oldest sync event not yet delivered (0: none waiting).",
        value=(utcnow() - oldest).total_seconds() if oldest else 0.0,
    )
