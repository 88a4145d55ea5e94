"""The write side of sync: a person change bumps the version and queues one event per school."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts import next_version
from idp.models import Account, AuditEvent, Client, Delivery, Person, utcnow
from idp.oidc.claims import person_claims, stuudium_claims

# What a merge or a split sends: every claim a school keeps of the person.
FULL_STATE = ["given_name", "family_name", "name", "birthdate", "email", "email_verified",
              "phone_number", "locale", "schools"]


def record_person_change(db: Session, person_id: int, changed: list[str], reason: str,
                         actor: str | None, school_id: int | None = None) -> list[Delivery]:
    """In the caller's transaction: bump the person's version from the global sequence, queue
    an event (kind "event") for each client of each school where the person has an active
    account, and audit the change (school_id: where it was made, if at a school). Returns the
    queued rows; nothing is sent here."""
    person = db.get(Person, person_id)
    if person is None:
        raise LookupError("no such person")
    person.version = next_version(db)
    person.updated_at = utcnow()
    db.flush()
    accounts = db.scalars(select(Account).where(Account.person_id == person_id,
                                                Account.status == "active")
                          .order_by(Account.school_id)).all()
    clients = db.execute(select(Client.id, Client.client_id, Client.school_id).where(
        Client.school_id.in_([a.school_id for a in accounts]),
        Client.status == "active").order_by(Client.id)).all()
    names = sorted(set(changed))
    rows = []
    for account in accounts:
        claims = _claims(db, person, account, names)
        for client_pk, client_id, school_id in clients:
            if school_id != account.school_id:
                continue
            # An immutable snapshot at this version: a later change writes a newer event.
            row = Delivery(kind="event", client_id=client_pk, payload={
                "sub": account.sub, "client_id": client_id, "version": person.version,
                "changed": names, "claims": claims, "reason": reason})
            db.add(row)
            rows.append(row)
    # Who, where, what changed and which schools are told: claim names only, never values.
    db.add(AuditEvent(action="person.change", actor=actor, school_id=school_id,
                      person_id=person_id, details={
                          "changed": names, "reason": reason, "version": person.version,
                          "schools": [a.school_id for a in accounts]}))
    db.flush()
    return rows


def _claims(db: Session, person: Person, account: Account, names: list[str]) -> dict[str, Any]:
    """The changed claims' current values as this school sees them."""
    everything = person_claims(person, account)
    if "schools" in names:
        everything["schools"] = stuudium_claims(db, account, current_app.config["ISSUER"])[
            "schools"]
    return {n: everything.get(n) for n in names if n in everything}
