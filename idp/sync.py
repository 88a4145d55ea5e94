"""Keeping schools in sync with a person's data: every change bumps the person's version and
queues one Security Event Token per school client where the person has an active account."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from idp.accounts import next_version
from idp.models import Account, AuditEvent, Client, Delivery, Person, utcnow

# The rows queued in a session's transaction, attempted at once when it commits.
_QUEUED = "sync_event_ids"


def record_person_change(db: Session, person_id: int, changed: list[str], reason: str,
                         actor: str | None) -> int:
    """Bump the person's version and queue an event for each of their schools, in the caller's
    transaction; audited with the actor's sub (and so their school). Returns the new version."""
    version = next_version(db)
    db.execute(update(Person).where(Person.id == person_id).values(version=version,
                                                                   updated_at=utcnow()))
    targets = db.execute(select(Account.sub, Client.id)
                         .join(Client, Client.school_id == Account.school_id)
                         .where(Account.person_id == person_id, Account.status == "active",
                                Client.status == "active", Client.events_uri.is_not(None))
                         .order_by(Client.id)).all()
    rows = [Delivery(kind="event", client_id=client_pk, payload={
        "sub": sub, "version": version, "changed": list(changed), "reason": reason})
        for sub, client_pk in targets]
    db.add_all(rows)
    actor_school = db.scalar(select(Account.school_id).where(Account.sub == actor)) if actor \
        else None
    db.add(AuditEvent(action="person.change", actor=actor, school_id=actor_school,
                      person_id=person_id, details={"changed": list(changed), "reason": reason,
                                                    "version": version}))
    db.flush()
    _attempt_after_commit(db, [row.id for row in rows])
    return version


def _attempt_after_commit(db: Session, ids: list[int]) -> None:
    """Send the queued events right after the caller commits (the worker retries failures)."""
    if not ids:
        return
    db.info.setdefault(_QUEUED, []).extend(ids)
    if not event.contains(db, "after_commit", _after_commit):
        event.listen(db, "after_commit", _after_commit)
        event.listen(db, "after_rollback", _after_rollback)


def _after_commit(db: Session) -> None:
    ids: list[int] = db.info.pop(_QUEUED, [])
    if ids and has_app_context():
        from idp import deliveries

        deliveries.attempt_soon(current_app._get_current_object(),  # type: ignore[attr-defined]
                                ids)


def _after_rollback(db: Session) -> None:
    db.info.pop(_QUEUED, None)


def person_changed_claims(person: Person, account: Account) -> dict[str, Any]:
    """The person's current data as a school may keep it (what a person-changed event says)."""
    from idp.oidc.claims import person_claims

    everything = person_claims(person, account)
    return {k: everything[k] for k in ("given_name", "family_name", "name", "birthdate",
                                       "email", "email_verified", "phone_number", "locale")}
