"""Queueing a message: a mail row or delivery rows go in with the caller's transaction, the
worker is woken when it commits (NOTIFY on PostgreSQL), and delivery rows get a direct attempt
from the sender the app registered at start (idp.dispatch.deliveries), so nothing here knows
what a message says or how it travels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from idp.models import MailOutbox
from shared import i18n
from shared.db import row_locks

WAKE_CHANNEL = "idp_deliveries"
# app.extensions keys of the registered senders: now (within a logout's budget, in the
# request) and soon (from a background thread, nobody waits).
SEND_NOW, SEND_SOON = "outbox.send_now", "outbox.send_soon"
Sender = Callable[[Flask, list[int]], Any]
# The rows queued in a session's transaction, attempted at once when it commits.
_QUEUED = "delivery_ids_after_commit"


def register_senders(app: Flask, now: Sender, soon: Sender) -> None:
    """Plug in what sends delivery rows (called once at app start)."""
    app.extensions[SEND_NOW], app.extensions[SEND_SOON] = now, soon


def notify_worker(db: Session) -> None:
    """Wake the delivery workers once this transaction commits (a NOTIFY is sent on commit)."""
    if row_locks(db):
        db.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})


def queue_mail(
    db: Session,
    recipient: str,
    template: str,
    *,
    school_id: int | None = None,
    locale: str | None = "et",
    kind: str = "mail",
    **context: Any,
) -> None:
    """Queue a mail in the caller's transaction (the worker is woken when it commits).
    context["one_time_link"] = {"purpose", "subject", "data"} asks for a one-time link in it."""
    db.add(
        MailOutbox(
            kind=kind,
            school_id=school_id,
            recipient=recipient.strip()[:320],
            locale=locale or i18n.DEFAULT,  # a person who chose no language: Estonian
            template=template,
            context=context,
        )
    )
    notify_worker(db)


def deliver_now(delivery_ids: list[int]) -> None:
    """Attempt committed rows at once, within the logout's budget (the worker retries the rest)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if delivery_ids and SEND_NOW in app.extensions:
        app.extensions[SEND_NOW](app, delivery_ids)


def deliver_after_commit(db: Session, delivery_ids: list[int]) -> None:
    """Attempt these rows (of db's open transaction) right after it commits; nothing of a
    rolled-back transaction is sent."""
    if not delivery_ids:
        return
    db.info.setdefault(_QUEUED, []).extend(delivery_ids)
    if not event.contains(db, "after_commit", _after_commit):
        event.listen(db, "after_commit", _after_commit)
        event.listen(db, "after_rollback", _after_rollback)


def _after_commit(db: Session) -> None:
    ids: list[int] = db.info.pop(_QUEUED, [])
    if ids and has_app_context() and SEND_SOON in current_app.extensions:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        app.extensions[SEND_SOON](app, ids)


def _after_rollback(db: Session) -> None:
    db.info.pop(_QUEUED, None)
