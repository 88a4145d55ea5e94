"""Identity proofing: which personal codes identify a person, and finding an account by one.

A code carries its provenance: "eid" (an eID login proved it, from a session that controlled
the account), "school" (the school recorded it) or "applicant" (typed in an application). Only
the first two are anchors: an eID login or the eID proof inside linking binds to an account only
through an anchored code, and only when the eID names match the account's person. A code is
unique among a school's active accounts; a lookup that finds two fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import Account, Person
from shared.names import same_name

EID = "eid"
SCHOOL = "school"
APPLICANT = "applicant"
SOURCES = (EID, SCHOOL, APPLICANT)
ANCHORS = (EID, SCHOOL)
# Which source a merged person keeps when both had the same code.
_STRENGTH = {EID: 2, SCHOOL: 1, APPLICANT: 0}


class ProofingError(LookupError):
    """An eID identity that cannot be bound to an account: error names why (and the page to
    show), status is that page's HTTP status."""

    error = "unbound"
    status = 409

    def __init__(self) -> None:
        super().__init__(self.error)


class NoAnchoredAccount(ProofingError):
    """No active account at the school has the code as an anchor (the ways forward: 200)."""

    error = "no_account"
    status = 200


class AmbiguousCode(ProofingError):
    """Two active accounts at the school have the code: no guess between people."""

    error = "ambiguous"


class NamesDiffer(ProofingError):
    """The school's records name someone else at this code."""

    error = "names"


@dataclass(frozen=True)
class Match:
    """The one active account at a school whose person has the code, and whether it anchors."""

    account: Account
    anchored: bool


def is_anchor(source: str | None) -> bool:
    """Whether a code of this provenance may identify its person to an eID login."""
    return source in ANCHORS


def stronger(a: str | None, b: str | None) -> str | None:
    """Of two provenances of the same code, the one that proves more."""
    return max((a, b), key=lambda s: _STRENGTH.get(s or "", -1))


def accounts_with_code(
    db: Session, school_id: int, isikukood: str, except_person_id: int | None = None
) -> list[Account]:
    """The active accounts at a school whose person has this code (any provenance)."""
    query = (
        select(Account)
        .join(Person, Person.id == Account.person_id)
        .where(
            Account.school_id == school_id,
            Account.status == "active",
            Person.isikukood == isikukood,
        )
    )
    if except_person_id is not None:
        query = query.where(Person.id != except_person_id)
    return list(db.scalars(query.limit(2)))


def code_taken(
    db: Session, school_id: int, isikukood: str, except_person_id: int | None = None
) -> bool:
    """Whether another active account at the school already has this code."""
    return bool(accounts_with_code(db, school_id, isikukood, except_person_id))


def find_by_code(db: Session, school_id: int, isikukood: str) -> Match | None:
    """The active account at a school with this code; AmbiguousCode when two
    have it (fail closed: no guess between people)."""
    found = accounts_with_code(db, school_id, isikukood)
    if len(found) > 1:
        raise AmbiguousCode()
    if not found:
        return None
    return Match(found[0], is_anchor(found[0].person.isikukood_source))


def names_match(person: Person, given_name: str, family_name: str) -> bool:
    """Whether eID names are the person's (normalised, case folded; õ is not o)."""
    return same_name(person.given_name, given_name) and same_name(person.family_name, family_name)


def bind_eid(
    db: Session,
    school_id: int,
    isikukood: str,
    given_name: str,
    family_name: str,
    controlling_person_id: int | None = None,
) -> Account:
    """The account an eID identity signs in to at a school, or ProofingError: NoAnchoredAccount
    (no anchored code; an applicant's code counts only when this browser's session already
    controls that account, and is then confirmed), AmbiguousCode, or NamesDiffer (the school's
    records name someone else)."""
    match = find_by_code(db, school_id, isikukood)
    if match is None:
        raise NoAnchoredAccount()
    person = match.account.person
    if not match.anchored and person.id != controlling_person_id:
        raise NoAnchoredAccount()
    if not names_match(person, given_name, family_name):
        raise NamesDiffer()
    return match.account
