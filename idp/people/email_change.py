"""Changing a person's e-mail: it takes effect only when the new address confirms a one-time
link; the login e-mail of every account follows (unique per school), linked schools are told
through the sync outbox, the old address is told, the person's other unused links are void, and
the person's other sessions end."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.models import Account, Person, School
from idp.outbox.queue import queue_mail
from idp.people import one_time_links as links
from idp.people.password_change import end_other_sessions
from idp.people.sync import record_person_change
from idp.sso.logout import Ended
from shared import i18n


def taken_at(db: Session, person_id: int, email: str) -> list[str]:
    """The names of the person's schools where another active account logs in with email."""
    own_schools = select(Account.school_id).where(Account.person_id == person_id)
    return list(
        db.scalars(
            select(School.name)
            .join(Account, Account.school_id == School.id)
            .where(
                Account.school_id.in_(own_schools),
                Account.person_id != person_id,
                Account.status == "active",
                func.lower(Account.login_email) == email.strip().lower(),
            )
            .order_by(School.name)
        )
    )


def request_change(db: Session, person: Person, new_email: str) -> None:
    """Mail the new address its confirmation link (a newer request voids the older link).
    The caller commits."""
    queue_mail(
        db,
        new_email,
        "email_confirm",
        locale=person.locale or i18n.current(),
        given_name=person.given_name,
        one_time_link={
            "purpose": "email",
            "subject": f"person:{person.id}",
            "data": {"email": new_email.strip()},
        },
    )


def apply_change(db: Session, person: Person, new_email: str, keep_sid: str | None) -> Ended:
    """Make the confirmed address the person's e-mail and every account's login e-mail, void
    the person's unused links, queue the sync events and the old address's notice, end the
    other sessions; commits."""
    old = person.email
    person.email, person.email_verified = new_email, True
    for account in db.scalars(select(Account).where(Account.person_id == person.id)):
        account.login_email = new_email.lower()
    # The person's row is written (and locked) above: their links next, then their sessions.
    links.void_for_person(db, person.id)
    record_person_change(
        db, person.id, ["email", "email_verified"], "email_change", f"person:{person.id}"
    )
    if old and old.lower() != new_email.lower():
        queue_mail(
            db,
            old,
            "email_changed",
            locale=person.locale or i18n.current(),
            given_name=person.given_name,
            old_email=old,
            new_email=new_email,
        )
    ended = end_other_sessions(db, person.id, keep_sid or "", "email_change")
    db.commit()
    return ended
