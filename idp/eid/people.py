"""Mapping an eID identity to a school account, and taking over the eID-verified data."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.eid.client import EidIdentity
from idp.logout import notify_worker
from idp.models import Account, Person
from idp.sync import record_person_change
from shared.names import same_name


def find_account(db: Session, school_id: int, isikukood: str) -> Account | None:
    """The active account at a school whose person has this isikukood (unique there)."""
    return db.scalar(select(Account).join(Person, Person.id == Account.person_id).where(
        Account.school_id == school_id, Account.status == "active",
        Person.isikukood == isikukood))


def display_form(name: str) -> str:
    """TARA's capitals as a name is written: each part of a word capitalised (MÄGI → Mägi,
    ANNA-LIISA → Anna-Liisa, O'CONNOR → O'Connor)."""
    return " ".join(word.title() for word in name.split())


def apply_verified_data(db: Session, person_id: int, identity: EidIdentity,
                        actor: str) -> list[str]:
    """Make the eID-verified names and birth date the person's where they really differ (the
    school's spelling stays when only case or spacing differ); bump the version and queue the
    change to every linked school. Returns the claims changed; the caller commits."""
    person = db.get(Person, person_id)
    if person is None:
        raise LookupError("no such person")
    changed = []
    if not same_name(person.given_name, identity.given_name):
        person.given_name = display_form(identity.given_name)
        changed.append("given_name")
    if not same_name(person.family_name, identity.family_name):
        person.family_name = display_form(identity.family_name)
        changed.append("family_name")
    if identity.birth_date is not None and person.birth_date != identity.birth_date:
        person.birth_date = identity.birth_date
        changed.append("birthdate")
    person.isikukood_source = "eid"
    if changed:
        if "given_name" in changed or "family_name" in changed:
            changed.append("name")
        record_person_change(db, person_id, changed, "eid", actor)
        notify_worker(db)
    db.flush()
    return changed
