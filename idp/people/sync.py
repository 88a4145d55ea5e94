"""Keeping schools in sync with a person's data: every change bumps the person's version and
queues one Security Event Token per school client where the person has an active account.

The token is minted at each delivery attempt from the person's current data and version
(idp/dispatch/deliveries.py), so a late or retried event never carries stale data; schools
apply only newer versions.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.models import Account, AuditEvent, Client, Delivery, Person, utcnow
from idp.outbox import queue
from idp.people.accounts import next_version

# What a merge or a split sends: every claim a school keeps of the person.
FULL_STATE = [
    "given_name",
    "family_name",
    "name",
    "birthdate",
    "email",
    "email_verified",
    "phone_number",
    "locale",
    "schools",
]


def record_person_change(
    db: Session,
    person_id: int,
    changed: list[str],
    reason: str,
    actor: str | None,
    school_id: int | None = None,
) -> int:
    """Bump the person's version and queue an event for each of their schools, in the caller's
    transaction; audited with the actor's sub and the school where the change was made (given,
    or the actor's). Sent once the transaction commits. Returns the new version."""
    version = next_version(db)
    db.execute(
        update(Person).where(Person.id == person_id).values(version=version, updated_at=utcnow())
    )
    targets = db.execute(
        select(Account.sub, Client.id)
        .join(Client, Client.school_id == Account.school_id)
        .where(
            Account.person_id == person_id,
            Account.status == "active",
            Client.status == "active",
            Client.events_uri.is_not(None),
        )
        .order_by(Client.id)
    ).all()
    names = sorted(set(changed))
    rows = [
        Delivery(
            kind="event",
            client_id=client_pk,
            payload={"sub": sub, "version": version, "changed": names, "reason": reason},
        )
        for sub, client_pk in targets
    ]
    db.add_all(rows)
    if school_id is None and actor:
        school_id = db.scalar(select(Account.school_id).where(Account.sub == actor))
    # Who, where, what changed: claim names only, never values.
    db.add(
        AuditEvent(
            action="person.change",
            actor=actor,
            school_id=school_id,
            person_id=person_id,
            details={"changed": names, "reason": reason, "version": version},
        )
    )
    db.flush()
    queue.deliver_after_commit(db, [row.id for row in rows])
    return version
