"""The delivery outbox: back-channel logout messages and security events (data sync) to schools.

One direct attempt right after the logout (or the data change) commits, then the worker (`idp
worker`) retries with exponential backoff and a freshly minted token per attempt until delivered,
refused (400) or older than the give-up age (a visible dead letter). A row is leased while
someone sends it, so neither a second worker nor the direct attempt sends it twice at once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask
from requests.adapters import HTTPAdapter
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.metrics import DELIVERY_LATENCY, KINDS
from idp.models import Account, Client, Delivery, Person, utcnow
from idp.oidc import tokens
from idp.oidc.claims import person_changed_claims
from idp.outbox import queue
from idp.outbox.lease import backoff_seconds, lease
from idp.outbox.netguard import BlockedAddress, PinnedAdapter
from shared.db import separate_transaction

THREADS = 32
BATCH = 500
MAX_BODY = 4096
_POOL = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="backchannel")
# Runs the direct attempts of committed events, off the request that committed them.
_SOON = ThreadPoolExecutor(max_workers=4, thread_name_prefix="events")


def new_session(adapter: Callable[..., HTTPAdapter] = HTTPAdapter) -> requests.Session:
    """An HTTP client for schools, its connections made by adapter."""
    http = requests.Session()
    http.headers["User-Agent"] = "Stuudium-ID back-channel delivery"
    # Schools are reached directly: no proxy and no .netrc credentials from the environment
    # (and not reading them on every request halves the client's CPU per message).
    http.trust_env = False
    # One keep-alive pool per school origin, as many connections as threads, so a burst reuses
    # connections instead of opening (and dropping) one per message.
    http.mount("http://", adapter(pool_connections=256, pool_maxsize=THREADS))
    http.mount("https://", adapter(pool_connections=256, pool_maxsize=THREADS))
    return http


# Development's schools are on 127.0.0.1: reached as before, with no lookup of our own.
_HTTP = new_session()
# Everywhere else only public addresses, each checked before the connection is made to it.
_GUARDED = new_session(PinnedAdapter)


def _client_for(app: Flask) -> requests.Session:
    return _HTTP if app.config["STUUDIUM_ENV"] == "development" else _GUARDED


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt ended with."""

    delivery_id: int
    delivered: bool
    status: int | None
    error: str | None


# A school confirms: logout with 200 (OIDC Back-Channel Logout §2.8), a security event with 202
# (RFC 8935 §2.2; 200 and 204 count too).
_DELIVERED = {"logout": (200, 204), "event": (200, 202, 204)}
_SET_HEADERS = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}


def _post(
    http: requests.Session,
    url: str,
    body: dict[str, str] | str,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> tuple[int | None, str | None]:
    try:
        resp = http.post(
            url, data=body, timeout=timeout, headers=headers, allow_redirects=False, stream=True
        )
        resp.raw.read(MAX_BODY)  # never more than a small body from a school
        resp.close()
        return resp.status_code, None
    except BlockedAddress as exc:
        return None, exc.error
    except requests.RequestException as exc:
        return None, type(exc).__name__


def _current_state(db: Session, subs: set[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Each account's person as it is now: (version, claims), so that a late retry carries the
    newest data and version (a school applies only newer versions: order-safe)."""
    if not subs:
        return {}

    rows = db.execute(
        select(Account, Person)
        .join(Person, Person.id == Account.person_id)
        .where(Account.sub.in_(subs))
    ).all()
    return {a.sub: (p.version, person_changed_claims(p, a)) for a, p in rows}


def send(
    app: Flask, delivery_ids: list[int], timeout: float, budget: float | None = None
) -> list[Outcome]:
    """Mint a fresh token per row (a logout token, or a security event from the person's current
    data) and POST them in parallel, each within timeout; what is not done within budget seconds
    in all (default: timeout) counts as timed out and is not sent later."""
    if not delivery_ids:
        return []
    issuer = app.config["ISSUER"]
    with separate_transaction() as db:
        rows = db.execute(
            select(
                Delivery.id,
                Delivery.kind,
                Delivery.payload,
                Client.client_id,
                Client.backchannel_logout_uri,
                Client.events_uri,
                Delivery.created_at,
            )
            .join(Client, Client.id == Delivery.client_id)
            .where(Delivery.id.in_(delivery_ids))
        ).all()
        ring = app.extensions["keys"].ring(db)
        state = _current_state(db, {r.payload.get("sub") for r in rows if r.kind == "event"})
    started = time.monotonic()
    http = _client_for(app)

    def attempt(
        kind: str, uri: str, client_id: str, payload: dict[str, Any]
    ) -> tuple[int | None, str | None]:
        # Minted in the sending thread, so iat is the moment of this attempt.
        sub = payload.get("sub")
        if kind == "logout":
            token = tokens.logout_token(
                ring, issuer, client_id=client_id, sub=sub, sid=payload.get("sid")
            )
            return _post(http, uri, {"logout_token": token}, timeout)
        if sub not in state:
            return None, "NoSuchAccount"
        version, claims = state[sub]
        token = tokens.security_event_token(
            ring,
            issuer,
            client_id=client_id,
            sub=sub,
            events={
                tokens.PERSON_CHANGED_EVENT: {
                    "version": version,
                    "changed": payload.get("changed"),
                    "claims": claims,
                }
            },
        )
        return _post(http, uri, token, timeout, _SET_HEADERS)

    queued = {r.id: r.created_at for r in rows}
    jobs: list[tuple[int, str, Future[tuple[int | None, str | None]]]] = [
        (r.id, r.kind, _POOL.submit(attempt, r.kind, uri, r.client_id, r.payload))
        for r in rows
        if (uri := r.events_uri if r.kind == "event" else r.backchannel_logout_uri)
    ]
    limit = timeout + 0.05 if budget is None else budget
    wait([f for _, _, f in jobs], timeout=max(0.0, started + limit - time.monotonic()))
    outcomes = []
    now = utcnow()
    for delivery_id, kind, future in jobs:
        if future.done():
            status, error = future.result()
        else:
            future.cancel()  # not started yet: it must not go out after being recorded
            status, error = None, "Timeout"
        outcomes.append(Outcome(delivery_id, status in _DELIVERED[kind], status, error))
        if status in _DELIVERED[kind]:
            DELIVERY_LATENCY.labels(KINDS[kind]).observe(
                (now - queued[delivery_id]).total_seconds()
            )
    return outcomes


def attempt_now(app: Flask, delivery_ids: list[int]) -> list[Outcome]:
    """The direct attempt right after a logout: everything within the configured budget."""
    outcomes = send(app, delivery_ids, app.config["BACKCHANNEL_TIMEOUT_SECONDS"])
    record(app, outcomes)
    return outcomes


def attempt_soon(app: Flask, delivery_ids: list[int]) -> None:
    """Send rows just committed from a background thread (no request waits for the schools);
    whatever fails is the worker's, as after any attempt."""
    _SOON.submit(_attempt_leased, app, delivery_ids)


def _attempt_leased(app: Flask, delivery_ids: list[int]) -> None:
    try:
        with app.app_context():
            leased = claim(app, delivery_ids)  # a worker may have taken some already
            record(app, send(app, leased, app.config["DELIVERY_TIMEOUT_SECONDS"]))
    except Exception:  # the rows stay pending: the worker sends them
        app.logger.exception("direct delivery attempt failed")


def record(app: Flask, outcomes: list[Outcome]) -> None:
    """Store results: delivered; 400 failed for good; else retry later, or dead when too old.

    One UPDATE per group of equal outcome (a retry's backoff depends on its attempts, so
    retries are grouped by those), each only on rows still pending.
    """
    if not outcomes:
        return
    now = utcnow()
    give_up_before = now - dt.timedelta(seconds=app.config["DELIVERY_GIVE_UP_SECONDS"])
    done: dict[tuple[str, int | None, str | None], list[int]] = defaultdict(list)
    retry: dict[tuple[int | None, str | None], list[int]] = defaultdict(list)
    for o in outcomes:
        if o.delivered or o.status == 400:
            done[("delivered" if o.delivered else "failed", o.status, o.error)].append(
                o.delivery_id
            )
        else:
            retry[(o.status, o.error)].append(o.delivery_id)
    pending = Delivery.state == "pending"
    with separate_transaction() as db:
        for (state, status, error), ids in done.items():
            db.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), pending)
                .values(
                    state=state,
                    attempts=Delivery.attempts + 1,
                    last_status=status,
                    last_error=error,
                    lease_until=None,
                    delivered_at=now if state == "delivered" else None,
                )
            )
        for (status, error), ids in retry.items():
            failed = dict(last_status=status, last_error=error, lease_until=None)
            db.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), pending, Delivery.created_at <= give_up_before)
                .values(state="dead", attempts=Delivery.attempts + 1, **failed)
            )
            by_attempts: dict[int, list[int]] = defaultdict(list)
            for row_id, attempts in db.execute(
                select(Delivery.id, Delivery.attempts).where(Delivery.id.in_(ids), pending)
            ):
                by_attempts[attempts + 1].append(row_id)
            for attempts, group in by_attempts.items():
                db.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(group), pending)
                    .values(
                        attempts=attempts,
                        next_attempt_at=now + dt.timedelta(seconds=backoff_seconds(app, attempts)),
                        **failed,
                    )
                )


def claim_due(app: Flask, limit: int = BATCH) -> list[int]:
    """Lease the pending rows that are due (rows of a killed worker come back at lease expiry)."""
    return lease(app, Delivery, [Delivery.next_attempt_at <= utcnow()], limit)


def claim(app: Flask, delivery_ids: list[int]) -> list[int]:
    """Lease these rows if they are pending and nobody holds them."""
    if not delivery_ids:
        return []
    return lease(app, Delivery, [Delivery.id.in_(delivery_ids)], len(delivery_ids))


def run_once(app: Flask) -> list[Outcome]:
    """Send one batch of due deliveries; return what happened."""
    ids = claim_due(app)
    # The batch ends well within its lease, so no other worker can claim a row still in flight.
    budget = app.config["DELIVERY_LEASE_SECONDS"] / 2
    outcomes = send(app, ids, app.config["DELIVERY_TIMEOUT_SECONDS"], budget)
    record(app, outcomes)
    return outcomes


def init_app(app: Flask) -> None:
    """Register the direct attempts of the outbox (idp.outbox.queue) for this app."""
    queue.register_senders(app, attempt_now, attempt_soon)


def resend(app: Flask, delivery_id: int) -> bool:
    """Put a failed or dead delivery back in the queue, due now."""
    with separate_transaction() as db:
        row = db.get(Delivery, delivery_id)
        if row is None or row.state == "delivered":
            return False
        row.state, row.next_attempt_at, row.lease_until = "pending", utcnow(), None
        return True
