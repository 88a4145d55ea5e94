"""Keeping schools in sync with a person's data: every change bumps the person's version and
queues one Security Event Token per school client where the person has an active account."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp import deliveries
from idp.accounts import next_version
from idp.models import Account, AuditEvent, Client, Delivery, Person, utcnow


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
    deliveries.attempt_after_commit(db, [row.id for row in rows])
    return version
