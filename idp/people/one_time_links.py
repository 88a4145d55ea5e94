"""One-time links e-mailed to people: 256-bit random, only the SHA-256 kept in SQL, consumed
atomically, bound to one purpose, each purpose with its own lifetime; a newer link of the same
purpose and subject voids the older.

A link dies with the facts it was issued for (ARCHITECTURE "Identity proofing"): it records the
address it was sent to, and a login link is consumed only while that is still its active
account's login e-mail (checked in the statement that consumes it); any change of a person's
login factors or identity voids the unused links of the person and of their accounts
(void_for_person) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, and_, exists, select, true, update
from sqlalchemy.orm import Session

from idp.models import Account, MailOutbox, OneTimeLink, Person, utcnow
from shared.db import row_locks
from shared.security import sha256_hex

PURPOSES = ("access", "welcome", "confirm", "email")
# A login link is either purpose: the welcome one lives longer (parents read mail later).
LOGIN = ("access", "welcome")


@dataclass(frozen=True)
class Consumed:
    """What a consumed link was for."""

    purpose: str
    subject: str
    school_id: int | None
    data: dict[str, Any]

    def subject_id(self, kind: str) -> int:
        """The subject's id, checked to be of the given kind ("account", "person", ...)."""
        prefix, _, number = self.subject.partition(":")
        if prefix != kind:
            raise ValueError(f"a {prefix} link where a {kind} link was expected")
        return int(number)


def mint(
    db: Session,
    purpose: str,
    subject: str,
    school_id: int | None = None,
    data: dict[str, Any] | None = None,
    *,
    sent_to: str,
) -> str:
    """Create a link mailed to sent_to and void the subject's older ones of the same purpose;
    return the token (only its hash is stored). The caller commits."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    now = utcnow()
    db.execute(
        update(OneTimeLink)
        .where(
            OneTimeLink.purpose == purpose,
            OneTimeLink.subject == subject,
            OneTimeLink.used_at.is_(None),
        )
        .values(used_at=now)
    )
    raw = secrets.token_urlsafe(32)
    lifetime = current_app.config["LINK_SECONDS"][purpose]
    db.add(
        OneTimeLink(
            token_hash=sha256_hex(raw),
            purpose=purpose,
            subject=subject,
            school_id=school_id,
            data=data or {},
            sent_to=sent_to.strip().lower(),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=lifetime),
        )
    )
    db.flush()
    return raw


def _still_valid(db: Session, subject: str) -> ColumnElement[bool] | None:
    """What the facts a link was issued for must still be when it is used: an account's link
    needs the account active and logging in with the address the link was sent to; a person's
    link, the person not merged into another (a change of either's factors voids their links
    besides). None for a subject that names nothing."""
    kind, _, number = subject.partition(":")
    if not number.isdigit():
        return None
    if kind == "account":
        return exists().where(
            Account.id == int(number),
            Account.status == "active",
            Account.school_id == OneTimeLink.school_id,
            Account.login_email == OneTimeLink.sent_to,
        )
    if kind == "person":
        _lock_person(db, int(number))
        return and_(
            OneTimeLink.sent_to.is_not(None),
            exists().where(Person.id == int(number), Person.merged_into_id.is_(None)),
        )
    return true()


def _lock_person(db: Session, person_id: int) -> None:
    """Lock the person a link is for (PostgreSQL) before the link's row: what uses a person's
    link then changes the person, and every change of a person takes the person's row before
    their links (void_for_person), so the two never wait on each other."""
    if row_locks(db):
        db.execute(select(Person.id).where(Person.id == person_id).with_for_update())


def consume(
    db: Session, raw: str, purposes: tuple[str, ...], school_id: int | None = None
) -> Consumed | None:
    """Use a link once: None when unknown, used, voided, expired, of another purpose, (given
    school_id) of another school, or no longer valid for its subject (_still_valid, checked
    in the statement that consumes it). The caller commits with what the link does."""
    if not raw or len(raw) > 100:
        return None
    hashed = sha256_hex(raw)
    subject = db.scalar(select(OneTimeLink.subject).where(OneTimeLink.token_hash == hashed))
    valid = _still_valid(db, subject) if subject is not None else None
    if subject is None or valid is None:
        return None
    query = (
        update(OneTimeLink)
        .where(
            OneTimeLink.token_hash == hashed,
            OneTimeLink.subject == subject,
            OneTimeLink.used_at.is_(None),
            OneTimeLink.expires_at > utcnow(),
            OneTimeLink.purpose.in_(purposes),
            valid,
        )
        .values(used_at=utcnow())
        .returning(
            OneTimeLink.purpose, OneTimeLink.subject, OneTimeLink.school_id, OneTimeLink.data
        )
    )
    if school_id is not None:
        query = query.where(OneTimeLink.school_id == school_id)
    row = db.execute(query).first()
    return Consumed(row.purpose, row.subject, row.school_id, dict(row.data)) if row else None


def void(db: Session, purpose: str, subject: str) -> None:
    """Void the subject's unused links of a purpose (e.g. when what they lead to is gone)."""
    db.execute(
        update(OneTimeLink)
        .where(
            OneTimeLink.purpose == purpose,
            OneTimeLink.subject == subject,
            OneTimeLink.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )


def void_for_person(db: Session, person_id: int, account_ids: tuple[int, ...] = ()) -> int:
    """Void, in the caller's transaction, every unused link of the person and of their accounts
    (as they are now, plus account_ids: one leaving the person) after a change of login
    factors or identity; return how many. Only link rows are written: call it after the
    function's own locks (ARCHITECTURE "Lock order")."""
    accounts = set(db.scalars(select(Account.id).where(Account.person_id == person_id)))
    subjects = [
        f"person:{person_id}",
        *(f"account:{a}" for a in sorted(accounts | set(account_ids))),
    ]
    done = db.execute(
        update(OneTimeLink)
        .where(
            OneTimeLink.purpose.in_(PURPOSES),
            OneTimeLink.subject.in_(subjects),
            OneTimeLink.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    _drop_unsent(db, person_id, set(subjects))
    return int(done.rowcount)  # type: ignore[attr-defined]


def _drop_unsent(db: Session, person_id: int, subjects: set[str]) -> None:
    """Drop the person's mail still waiting to be sent with a link in it (a link is minted at
    sending time, so voiding alone would miss it): the mails that name these subjects, and
    access requests for the person's login addresses at their schools."""
    logins = db.execute(
        select(Account.school_id, Account.login_email).where(Account.person_id == person_id)
    ).all()
    addresses = {(school, (email or "").lower()) for school, email in logins}
    for row in db.scalars(
        select(MailOutbox).where(
            MailOutbox.state == "pending",
            MailOutbox.school_id.in_({s for s, _ in addresses}) | MailOutbox.school_id.is_(None),
        )
    ):
        spec = row.context.get("one_time_link") or {}
        requested = row.kind == "access" and (row.school_id, row.recipient.lower()) in addresses
        if requested or spec.get("subject") in subjects:
            row.state, row.lease_until, row.context = "dropped", None, {}
