"""The delivery outbox: back-channel logout messages to schools.

One direct attempt right after the logout commits, then the worker (`idp worker`) retries with
exponential backoff and a freshly minted token per attempt until delivered, refused (400) or
older than the give-up age (a visible dead letter). A row is leased while someone sends it, so
neither a second worker nor the direct attempt sends it twice at the same time.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import requests
from flask import Flask
from sqlalchemy import or_, select, update

from idp.models import Delivery, utcnow
from idp.oidc import tokens
from shared.db import separate_transaction

_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="backchannel")
_HTTP = requests.Session()
_HTTP.headers["User-Agent"] = "Stuudium-ID back-channel logout"
MAX_BODY = 4096


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt ended with."""

    delivery_id: int
    delivered: bool
    status: int | None
    error: str | None


def _post(url: str, token: str, timeout: float) -> tuple[int | None, str | None]:
    try:
        resp = _HTTP.post(url, data={"logout_token": token}, timeout=timeout,
                          allow_redirects=False, stream=True)
        resp.raw.read(MAX_BODY)  # never more than a small body from a school
        resp.close()
        return resp.status_code, None
    except requests.RequestException as exc:
        return None, type(exc).__name__


def send(app: Flask, delivery_ids: list[int], timeout: float) -> list[Outcome]:
    """Mint a fresh logout token per row and POST them in parallel within timeout."""
    if not delivery_ids:
        return []
    issuer = app.config["ISSUER"]
    with separate_transaction() as db:
        rows = db.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids))).all()
        ring = app.extensions["keys"].ring(db)
        jobs = []
        for row in rows:
            uri = row.client.backchannel_logout_uri
            if not uri:
                continue
            token = tokens.logout_token(ring, issuer, client_id=row.client.client_id,
                                        sub=row.payload.get("sub"), sid=row.payload.get("sid"))
            jobs.append((row.id, _POOL.submit(_post, uri, token, timeout)))
    deadline = time.monotonic() + timeout + 0.05
    wait([f for _, f in jobs], timeout=max(0.0, deadline - time.monotonic()))
    outcomes = []
    for delivery_id, future in jobs:
        status, error = future.result() if future.done() else (None, "Timeout")
        outcomes.append(Outcome(delivery_id, status in (200, 204), status, error))
    return outcomes


def attempt_now(app: Flask, delivery_ids: list[int]) -> list[Outcome]:
    """The direct attempt right after a logout: everything within the configured budget."""
    outcomes = send(app, delivery_ids, app.config["BACKCHANNEL_TIMEOUT_SECONDS"])
    record(app, outcomes)
    return outcomes


def backoff_seconds(app: Flask, attempts: int) -> float:
    """Exponential backoff after the given number of failed attempts, capped."""
    base = app.config["DELIVERY_BACKOFF_SECONDS"]
    return float(min(base * 2 ** max(0, attempts - 1), app.config["DELIVERY_BACKOFF_MAX_SECONDS"]))


def record(app: Flask, outcomes: list[Outcome]) -> None:
    """Store results: delivered; 400 failed for good; else retry later, or dead when too old."""
    if not outcomes:
        return
    now = utcnow()
    give_up = dt.timedelta(seconds=app.config["DELIVERY_GIVE_UP_SECONDS"])
    with separate_transaction() as db:
        for outcome in outcomes:
            row = db.get(Delivery, outcome.delivery_id)
            if row is None or row.state != "pending":
                continue
            row.attempts += 1
            row.last_status = outcome.status
            row.last_error = outcome.error
            row.lease_until = None
            if outcome.delivered:
                row.state, row.delivered_at = "delivered", now
            elif outcome.status == 400:
                row.state = "failed"
            elif now - row.created_at >= give_up:
                row.state = "dead"
            else:
                row.next_attempt_at = now + dt.timedelta(
                    seconds=backoff_seconds(app, row.attempts))


def claim_due(app: Flask, limit: int = 50) -> list[int]:
    """Lease the pending rows that are due (rows of a killed worker come back at lease expiry)."""
    now = utcnow()
    lease = dt.timedelta(seconds=app.config["DELIVERY_LEASE_SECONDS"])
    with separate_transaction() as db:
        query = (select(Delivery.id).where(
            Delivery.state == "pending", Delivery.next_attempt_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))
            .order_by(Delivery.next_attempt_at).limit(limit))
        if db.bind is not None and db.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(db.scalars(query))
        if ids:
            db.execute(update(Delivery).where(Delivery.id.in_(ids)).values(lease_until=now + lease))
    return ids


def run_once(app: Flask) -> list[Outcome]:
    """Send every due delivery once; return what happened."""
    ids = claim_due(app)
    outcomes = send(app, ids, app.config["DELIVERY_TIMEOUT_SECONDS"])
    record(app, outcomes)
    return outcomes


def resend(app: Flask, delivery_id: int) -> bool:
    """Put a failed or dead delivery back in the queue, due now."""
    with separate_transaction() as db:
        row = db.get(Delivery, delivery_id)
        if row is None or row.state == "delivered":
            return False
        row.state, row.next_attempt_at, row.lease_until = "pending", utcnow(), None
        return True
