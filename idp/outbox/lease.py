"""What every outbox of the IdP shares: leasing due rows (SKIP LOCKED on PostgreSQL, so several
workers never hold one row at once; a killed worker's rows come back at lease expiry) and the
exponential backoff between attempts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask
from sqlalchemy import or_, select, update

from idp.models import utcnow
from shared.db import row_locks, separate_transaction


def backoff_seconds(app: Flask, attempts: int) -> float:
    """Exponential backoff after the given number of failed attempts, capped."""
    base = app.config["DELIVERY_BACKOFF_SECONDS"]
    return float(min(base * 2 ** max(0, attempts - 1), app.config["DELIVERY_BACKOFF_MAX_SECONDS"]))


def lease(app: Flask, model: Any, where: list[Any], limit: int) -> list[int]:
    """Lease up to limit pending rows of an outbox model that match where and nobody holds."""
    now = utcnow()
    until = now + dt.timedelta(seconds=app.config["DELIVERY_LEASE_SECONDS"])
    with separate_transaction() as db:
        query = (
            select(model.id)
            .where(
                model.state == "pending",
                *where,
                or_(model.lease_until.is_(None), model.lease_until < now),
            )
            .order_by(model.next_attempt_at)
            .limit(limit)
        )
        if row_locks(db):
            query = query.with_for_update(skip_locked=True)
        ids = list(db.scalars(query))
        if ids:
            db.execute(update(model).where(model.id.in_(ids)).values(lease_until=until))
    return ids
