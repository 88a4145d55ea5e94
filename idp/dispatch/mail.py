"""The mail outbox: a request queues a row in its own transaction; the worker sends it.

Queuing is the same small insert whether or not an account exists (an access request is
resolved here, not in the request), so no answer takes measurably longer for a known address.
A link in a mail is minted when the mail is sent, so no usable link rests in SQL; a retry mints
a new one, which voids the one of the failed attempt. The link records the recipient: it works
only while that is still its account's login e-mail (idp.people.one_time_links). Rows are
leased while being sent (FOR UPDATE SKIP LOCKED on PostgreSQL), and retried with exponential
backoff until given up.
"""

from __future__ import annotations

import datetime as dt
import logging

import redis
from flask import Flask, render_template
from flask_babel import force_locale
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idp.models import MailOutbox, School, utcnow
from idp.outbox.lease import backoff_seconds, lease
from idp.people import one_time_links as links
from idp.people.accounts import find_login_account
from shared import mail
from shared.db import separate_transaction

log = logging.getLogger(__name__)

BATCH = 50
# Where each purpose's link opens; the token travels in the fragment, never sent to a server.
LINK_PATHS = {
    "access": "/s/{slug}/signin",
    "welcome": "/s/{slug}/signin",
    "confirm": "/s/{slug}/apply/confirm",
    "email": "/account/email/confirm",
}


def claim_due(app: Flask, limit: int = BATCH) -> list[int]:
    """Lease the due pending rows (a killed worker's come back at lease expiry)."""
    return lease(app, MailOutbox, [MailOutbox.next_attempt_at <= utcnow()], limit)


def _render(
    app: Flask, row: MailOutbox, school: School | None, link: str | None
) -> tuple[str, str]:
    """The subject (the template's first line) and the body, in the recipient's language."""
    with app.test_request_context(), force_locale(row.locale):
        context = {k: v for k, v in row.context.items() if k != "one_time_link"}
        text = render_template(
            f"mail/{row.template}.txt",
            school=school,
            link=link,
            issuer=app.config["ISSUER"],
            **context,
        )
    subject, _, body = text.strip().partition("\n")
    return subject.strip(), body.strip() + "\n"


def _prepare(app: Flask, db: Session, row: MailOutbox) -> tuple[str, str] | None:
    """Resolve the row (an access request without an account is dropped) and mint its link."""
    school = db.get(School, row.school_id) if row.school_id is not None else None
    spec = row.context.get("one_time_link")
    if row.kind == "access":
        account = (
            find_login_account(db, row.school_id, row.recipient)
            if row.school_id is not None
            else None
        )
        if account is None or school is None:
            return None
        spec = {"purpose": "access", "subject": f"account:{account.id}"}
        row.locale = account.person.locale or row.locale
    url = None
    if spec:
        raw = links.mint(
            db,
            spec["purpose"],
            spec["subject"],
            row.school_id,
            spec.get("data"),
            sent_to=row.recipient,
        )
        path = LINK_PATHS[spec["purpose"]].format(slug=school.slug if school else "")
        # The page the link opens speaks the mail's language (until the person chose one).
        url = f"{app.config['ISSUER']}{path}?ui_locales={row.locale}#{raw}"
    return _render(app, row, school, url)


def send_one(app: Flask, row_id: int) -> str:
    """Send one claimed row; return its new state."""
    with separate_transaction() as db:
        row = db.get(MailOutbox, row_id)
        if row is None or row.state != "pending":
            return "gone"
        rendered = _prepare(app, db, row)
        now = utcnow()
        if rendered is None:
            row.state, row.lease_until, row.context = "dropped", None, {}
            return row.state
        try:
            message = mail.compose(app.config["MAIL_FROM"], row.recipient, *rendered, row.locale)
        except ValueError:  # not an address a header can carry: it never will be
            row.state, row.lease_until, row.last_error = "dead", None, "bad recipient"
            return row.state
        try:
            mail.send(app.config["SMTP_URL"], message)
        except mail.MailError as exc:
            row.attempts += 1
            row.last_error, row.lease_until = str(exc)[:200], None
            given_up = row.created_at <= now - dt.timedelta(
                seconds=app.config["DELIVERY_GIVE_UP_SECONDS"]
            )
            row.state = "dead" if given_up else "pending"
            row.next_attempt_at = now + dt.timedelta(seconds=backoff_seconds(app, row.attempts))
            log.warning("mail %s not sent (%s), attempt %d", row.id, row.last_error, row.attempts)
            return row.state
        row.state, row.sent_at, row.lease_until, row.attempts = "sent", now, None, row.attempts + 1
        row.context = {}  # what the mail said is the recipient's now, not ours to keep
        return row.state


def run_once(app: Flask) -> int:
    """Send one batch of due mail; return how many rows were handled."""
    ids = claim_due(app)
    for row_id in ids:
        try:
            send_one(app, row_id)
        except (SQLAlchemyError, redis.RedisError):
            raise  # the stores are away: the worker waits and tries again
        except Exception:  # a row that cannot be rendered must not stop the others
            log.exception("mail %s cannot be sent; set aside as dead", row_id)
            with separate_transaction() as db:
                db.execute(
                    update(MailOutbox)
                    .where(MailOutbox.id == row_id)
                    .values(state="dead", lease_until=None, last_error="cannot be rendered")
                )
    return len(ids)
