"""Mapping an eID identity to a school account, and taking over the eID-verified data."""

from __future__ import annotations

from sqlalchemy.orm import Session

from idp.eid.client import EidIdentity
from idp.models import Account, Person
from idp.outbox.queue import notify_worker
from idp.people import proofing
from idp.people.sync import record_person_change


def find_account(
    db: Session, school_id: int, identity: EidIdentity, controlling_person_id: int | None = None
) -> Account:
    """The account at a school this eID identity may sign in to (idp.people.proofing.bind_eid):
    an anchored code and the same names; ProofingError says why not."""
    return proofing.bind_eid(
        db,
        school_id,
        identity.isikukood,
        identity.given_name,
        identity.family_name,
        controlling_person_id,
    )


def apply_verified_data(
    db: Session, person_id: int, identity: EidIdentity, actor: str
) -> list[str]:
    """After binding (names already the same, people.proofing): make the code eID-verified
    and the eID birth date the person's; a changed birth date bumps the version and goes to
    every linked school. Returns the claims changed; the caller commits."""
    person = db.get(Person, person_id)
    if person is None:
        raise LookupError("no such person")
    if person.isikukood == identity.isikukood:
        person.isikukood_source = proofing.EID
    changed = []
    if identity.birth_date is not None and person.birth_date != identity.birth_date:
        person.birth_date = identity.birth_date
        changed.append("birthdate")
        record_person_change(db, person_id, changed, "eid", actor)
        notify_worker(db)
    db.flush()
    return changed


def confirm_code(db: Session, person_id: int, identity: EidIdentity) -> bool:
    """From a session that controls the person: make the code they typed eID-verified when the
    eID has that code and the person's names. The caller commits."""
    person = db.get(Person, person_id)
    if (
        person is None
        or person.isikukood != identity.isikukood
        or not proofing.names_match(person, identity.given_name, identity.family_name)
    ):
        return False
    apply_verified_data(db, person_id, identity, actor=f"person:{person_id}")
    return True
