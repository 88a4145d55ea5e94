"""The delivery outbox: back-channel logout messages to schools, one direct attempt now.

Retries with backoff and the worker come with the single-logout issue; rows left pending here
are what that worker picks up.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import requests
from flask import Flask
from sqlalchemy import select

from idp.models import Delivery, utcnow
from idp.oidc import tokens
from shared.db import separate_transaction

_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="backchannel")
_HTTP = requests.Session()
_HTTP.headers["User-Agent"] = "Stuudium-ID back-channel logout"


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
        resp.close()
        return resp.status_code, None
    except requests.RequestException as exc:
        return None, type(exc).__name__


def attempt_now(app: Flask, delivery_ids: list[int]) -> list[Outcome]:
    """Send the given logout deliveries in parallel, within the configured time budget."""
    if not delivery_ids:
        return []
    budget = app.config["BACKCHANNEL_TIMEOUT_SECONDS"]
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
            jobs.append((row.id, _POOL.submit(_post, uri, token, budget)))
    deadline = time.monotonic() + budget + 0.05
    wait([f for _, f in jobs], timeout=max(0.0, deadline - time.monotonic()))
    outcomes = []
    for delivery_id, future in jobs:
        if future.done():
            status, error = future.result()
        else:
            status, error = None, "Timeout"
        outcomes.append(Outcome(delivery_id, status in (200, 204), status, error))
    record(outcomes)
    return outcomes


def record(outcomes: list[Outcome]) -> None:
    """Store attempt results; a 400 is final (an invalid token is not retried)."""
    if not outcomes:
        return
    with separate_transaction() as db:
        for outcome in outcomes:
            row = db.get(Delivery, outcome.delivery_id)
            if row is None:
                continue
            row.attempts += 1
            row.last_status = outcome.status
            row.last_error = outcome.error
            if outcome.delivered:
                row.state = "delivered"
                row.delivered_at = utcnow()
            elif outcome.status == 400:
                row.state = "failed"

