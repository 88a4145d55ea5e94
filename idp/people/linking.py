"""Linking a person's accounts across schools (merge) and splitting one off again (unlink).

A link attempt lives in SQL, not Redis: it is consumed in the same transaction as the merge
(consumed exactly when merged), and a Redis failover that revives a key cannot replay it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from idp.models import Account, AuditEvent, LinkAttempt, Person, School, SsoSession, utcnow
from idp.people import one_time_links as links
from idp.people import proofing
from idp.people.sync import FULL_STATE, record_person_change
from idp.sso.logout import Ended, Scope, end_sessions, lock_sessions
from shared.db import row_locks
from shared.names import same_name
from shared.security import sha256_hex


class LinkRefused(Exception):
    """The link cannot go on: error names the reason (the page says what to do next), status is
    the page's HTTP status, schools the schools the reason concerns."""

    error = "refused"
    status = 400

    def __init__(self, schools: list[str] | None = None) -> None:
        super().__init__(self.error)
        self.schools = schools or []


class UnknownAttempt(LinkRefused):
    error = "unknown"


class AttemptExpired(LinkRefused):
    error = "expired"


class AttemptUsed(LinkRefused):
    error = "used"


class OtherSession(LinkRefused):
    error = "other_session"


class WrongSchool(LinkRefused):
    error = "wrong_school"


class NotProven(LinkRefused):
    error = "not_proven"


class TargetGone(LinkRefused):
    error = "target_gone"


class DataMismatch(LinkRefused):
    error = "mismatch"


class EidNoAccount(LinkRefused):
    error = "eid_no_account"


class NotLinked(LinkRefused):
    error = "not_linked"


class OnlyAccount(LinkRefused):
    error = "only_account"


class AlreadyLinked(LinkRefused):
    error = "already_linked"
    status = 409


class AccountsChanged(LinkRefused):
    error = "changed"
    status = 409


class TwoAccounts(LinkRefused):
    error = "two_accounts"
    status = 409


class EmailTaken(LinkRefused):
    error = "email_taken"
    status = 409


class EidAmbiguous(LinkRefused):
    error = "eid_ambiguous"
    status = 409


class EidNames(LinkRefused):
    error = "eid_names"
    status = 409


# Why an eID proof of the other account binds to none (people.proofing), as a refusal.
EID_REFUSALS: dict[type[proofing.ProofingError], type[LinkRefused]] = {
    proofing.NoAnchoredAccount: EidNoAccount,
    proofing.AmbiguousCode: EidAmbiguous,
    proofing.NamesDiffer: EidNames,
}


def linkable_schools(db: Session, person_id: int) -> list[School]:
    """Active schools where the person has no account yet."""
    own = select(Account.school_id).where(Account.person_id == person_id)
    return list(
        db.scalars(
            select(School)
            .where(School.status == "active", School.id.not_in(own))
            .order_by(School.name)
        )
    )


def start(
    db: Session, sid: str, person_id: int, source_school_id: int | None, target_school_id: int
) -> str:
    """Create an attempt bound to the session and person; return its id (only its hash is
    stored). The caller commits."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    # The person's finished attempts are of no further use: they go when a new one starts.
    db.execute(
        delete(LinkAttempt).where(LinkAttempt.person_id == person_id, LinkAttempt.expires_at <= now)
    )
    db.add(
        LinkAttempt(
            id_hash=sha256_hex(raw),
            session_id=sid,
            person_id=person_id,
            source_school_id=source_school_id,
            target_school_id=target_school_id,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=current_app.config["LINK_ATTEMPT_SECONDS"]),
        )
    )
    return raw


def open_attempt(db: Session, raw: str, sid: str) -> LinkAttempt:
    """Return the live attempt of this session, or refuse: unknown, expired, used, or
    started in another session."""
    attempt = db.get(LinkAttempt, sha256_hex(raw[:100])) if raw else None
    if attempt is None:
        raise UnknownAttempt()
    if attempt.used_at is not None:
        raise AttemptUsed()
    if attempt.session_id != sid:
        raise OtherSession()
    if attempt.expires_at <= utcnow():
        raise AttemptExpired()
    return attempt


def prove(db: Session, attempt: LinkAttempt, account_id: int) -> None:
    """Store the second login's one-shot proof in the attempt (never a session of its own)."""
    attempt.target_account_id = account_id
    attempt.proven_at = utcnow()


def differences(mine: Person, theirs: Person) -> list[str]:
    """The personal data fields that do not match (an empty list is a match)."""
    diff = []
    if mine.isikukood and theirs.isikukood and mine.isikukood != theirs.isikukood:
        diff.append("isikukood")
    if not same_name(mine.given_name, theirs.given_name):
        diff.append("given_name")
    if not same_name(mine.family_name, theirs.family_name):
        diff.append("family_name")
    if mine.birth_date and theirs.birth_date and mine.birth_date != theirs.birth_date:
        diff.append("birth_date")
    return diff


CONTACTS = ("email", "phone")


def contact_choices(mine: Person, theirs: Person) -> dict[str, tuple[str, str]]:
    """Contact details both have and that differ: the person chooses (mine, theirs)."""
    choices = {}
    for name in CONTACTS:
        a, b = getattr(mine, name), getattr(theirs, name)
        if a and b and a.strip().lower() != b.strip().lower():
            choices[name] = (a, b)
    return choices


@dataclass
class Merged:
    """The outcome of a merge: the person kept and the absorbed person's ended sessions."""

    person_id: int
    source_school_id: int | None
    ended: Ended = field(default_factory=lambda: Ended([], []))


def confirm(db: Session, raw: str, sid: str, take_theirs: set[str]) -> Merged:
    """Merge the proven target account's person into the initiator's, in one transaction with
    the attempt's consumption, both persons' unused links voided, the sync events, the audit
    and the absorbed sessions' end."""
    attempt = open_attempt(db, raw, sid)
    if attempt.target_account_id is None:
        raise NotProven()
    now = utcnow()
    # Claimed atomically: of two confirmations of one attempt only one gets the row.
    claimed = db.execute(
        update(LinkAttempt)
        .where(
            LinkAttempt.id_hash == attempt.id_hash,
            LinkAttempt.used_at.is_(None),
            LinkAttempt.session_id == sid,
            LinkAttempt.expires_at > now,
            LinkAttempt.target_account_id.is_not(None),
        )
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        raise AttemptUsed()
    target = db.get(Account, attempt.target_account_id)
    if (
        target is None
        or target.status != "active"
        or (target.school_id != attempt.target_school_id)
    ):
        raise _refuse(db, TargetGone())
    # Both persons locked, then read again: a link of either that committed meanwhile may have
    # absorbed one of them or moved the proven account (that link is not repeated here).
    mine, theirs = _locked_persons(db, attempt.person_id, target.person_id)
    db.refresh(target)
    if target.person_id == mine.id:
        raise _refuse(db, AlreadyLinked())
    if (
        mine.merged_into_id is not None
        or theirs.merged_into_id is not None
        or (target.person_id != theirs.id)
    ):
        raise _refuse(db, AccountsChanged())
    if differences(mine, theirs):
        raise _refuse(db, DataMismatch())
    lock_sessions(db, theirs.id)  # before their accounts: the sessions end with the merge
    their_accounts = list(db.scalars(select(Account).where(Account.person_id == theirs.id)))
    my_schools = set(db.scalars(select(Account.school_id).where(Account.person_id == mine.id)))
    clash = [a.school.name for a in their_accounts if a.school_id in my_schools]
    if clash:
        raise _refuse(db, TwoAccounts(clash))
    _merge_data(mine, theirs, take_theirs & set(contact_choices(mine, theirs)))
    mine_accounts = list(db.scalars(select(Account).where(Account.person_id == mine.id)))
    _sync_login_email(db, mine, mine_accounts + their_accounts)
    for account in their_accounts:
        account.person_id = mine.id
    theirs.merged_into_id = mine.id
    theirs.password_hash = None  # one password after linking: the initiator's
    db.flush()
    # Every account is mine's now: an unused link of either person or any account dies here.
    links.void_for_person(db, mine.id)
    links.void_for_person(db, theirs.id)
    actor = f"person:{mine.id}"
    record_person_change(db, mine.id, FULL_STATE, "link", actor, attempt.source_school_id)
    db.add(
        AuditEvent(
            action="person.link",
            actor=actor,
            school_id=attempt.target_school_id,
            person_id=mine.id,
            details={
                "absorbed_person": theirs.id,
                "accounts": [a.id for a in their_accounts],
                "contacts_taken": sorted(take_theirs & set(CONTACTS)),
            },
        )
    )
    # Commits the merge with the absorbed person's ended sessions (their schools are told).
    ended = end_sessions(db, Scope(person_id=theirs.id), "link")
    db.commit()  # end_sessions commits only when it found sessions
    return Merged(mine.id, attempt.source_school_id, ended)


def mark_mismatch(db: Session, attempt: LinkAttempt) -> None:
    """A mismatch ends the attempt: nothing is merged and it cannot be confirmed later (a
    commit point: the refusal's page answers 409, whose request would roll back)."""
    attempt.used_at = utcnow()
    db.commit()


def _refuse(db: Session, refusal: LinkRefused) -> LinkRefused:
    """Undo the claim and everything since; the attempt stays as it was."""
    db.rollback()
    return refusal


def _locked_persons(db: Session, *person_ids: int) -> list[Person]:
    """Read persons for update (on PostgreSQL), in the order of their ids, so that two links or
    unlinks of one person serialise and two of the same persons never wait on each other; the
    rows are read afresh (a person already in the session is refreshed)."""
    query = (
        select(Person)
        .where(Person.id.in_(person_ids))
        .order_by(Person.id)
        .execution_options(populate_existing=True)
    )
    if row_locks(db):
        query = query.with_for_update()
    found = {p.id: p for p in db.scalars(query)}
    if len(found) != len(set(person_ids)):
        raise LookupError("person missing")
    return [found[i] for i in person_ids]


def _merge_data(mine: Person, theirs: Person, take_theirs: set[str]) -> None:
    """Explicit rules: names stay the initiator's spelling; a personal code or birth date only
    the absorbed person has is kept; contact details as chosen, or whichever exists."""
    if not mine.isikukood and theirs.isikukood:
        mine.isikukood, mine.isikukood_source = theirs.isikukood, theirs.isikukood_source
    elif mine.isikukood and mine.isikukood == theirs.isikukood:
        mine.isikukood_source = proofing.stronger(mine.isikukood_source, theirs.isikukood_source)
    if not mine.birth_date and theirs.birth_date:
        mine.birth_date = theirs.birth_date
    if "email" in take_theirs or (not mine.email and theirs.email):
        mine.email, mine.email_verified = theirs.email, theirs.email_verified
    if "phone" in take_theirs or (not mine.phone and theirs.phone):
        mine.phone = theirs.phone
    if not mine.address and theirs.address:
        mine.address = theirs.address


def _sync_login_email(db: Session, person: Person, accounts: list[Account]) -> None:
    """Keep each account's login e-mail equal to the person's; refuse when another active
    account at that school already logs in with it."""
    email = (person.email or "").strip().lower() or None
    if email is None:
        return
    ids = {a.id for a in accounts}
    for account in accounts:
        if account.login_email == email:
            continue
        taken = db.scalar(
            select(Account.id).where(
                Account.school_id == account.school_id,
                Account.login_email == email,
                Account.status == "active",
                Account.id.not_in(ids),
            )
        )
        if taken is not None:
            raise _refuse(db, EmailTaken([account.school.name]))
        account.login_email = email


@dataclass
class Unlinked:
    """The outcome of an unlink: the new person, and the sessions that ended or lost a school."""

    person_id: int
    ended: list[Ended]


def linked_accounts(db: Session, person_id: int) -> list[Account]:
    """The person's active accounts, with their schools, by school name."""
    return list(
        db.scalars(
            select(Account)
            .join(School)
            .where(Account.person_id == person_id, Account.status == "active")
            .order_by(School.name)
        )
    )


def unlink(db: Session, person: Person, school_id: int) -> Unlinked:
    """Split the account at one school off into a person of its own (a copy of the data, no
    password); the person's and that account's unused links are void, that school's part of
    the person's sessions ends, and a session that logged in with that account ends
    entirely."""
    _locked_persons(db, person.id)  # a link of this person meanwhile: its outcome is read here
    lock_sessions(db, person.id)  # before the account: the sessions lose that school
    accounts = linked_accounts(db, person.id)
    account = next((a for a in accounts if a.school_id == school_id), None)
    if account is None:
        raise NotLinked()
    if len(accounts) < 2:
        raise OnlyAccount()
    logged_in_with = tuple(
        db.scalars(
            select(SsoSession.id).where(
                SsoSession.person_id == person.id,
                SsoSession.account_id == account.id,
                SsoSession.ended_at.is_(None),
            )
        )
    )
    copy = Person(
        given_name=person.given_name,
        family_name=person.family_name,
        isikukood=person.isikukood,
        isikukood_source=person.isikukood_source,
        birth_date=person.birth_date,
        email=person.email,
        email_verified=person.email_verified,
        phone=person.phone,
        address=person.address,
        locale=person.locale,
        version=0,
        password_hash=None,
    )
    db.add(copy)
    db.flush()
    account.person_id = copy.id
    db.flush()
    links.void_for_person(db, person.id, account_ids=(account.id,))
    actor = f"person:{person.id}"
    record_person_change(db, person.id, FULL_STATE, "unlink", actor)
    record_person_change(db, copy.id, FULL_STATE, "unlink", actor, school_id)
    db.add(
        AuditEvent(
            action="person.unlink",
            actor=actor,
            school_id=school_id,
            person_id=person.id,
            details={"account": account.id, "new_person": copy.id},
        )
    )
    # The account already belongs to the copy, so every session of the person loses that
    # school (its tokens revoked, a logout sent) in the same commit as the split.
    ended = [end_sessions(db, Scope(person_id=person.id, school_id=school_id), "unlink")]
    db.commit()  # end_sessions commits only when it found sessions
    if logged_in_with:
        ended.append(end_sessions(db, Scope(session_ids=logged_in_with), "unlink"))
    return Unlinked(copy.id, ended)
