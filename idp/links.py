"""One-time links e-mailed to people: 256-bit random, only the SHA-256 kept in SQL, consumed
atomically, bound to one purpose, each purpose with its own lifetime; a newer link of the same
purpose and subject voids the older."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.models import OneTimeLink, utcnow

PURPOSES = ("access", "welcome", "confirm", "email")
# A login link is either purpose: the welcome one lives longer (parents read mail later).
LOGIN = ("access", "welcome")


def token_hash(raw: str) -> str:
    """Return the SHA-256 under which a link is known."""
    return hashlib.sha256(raw.encode()).hexdigest()


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


def mint(db: Session, purpose: str, subject: str, school_id: int | None = None,
         data: dict[str, Any] | None = None) -> str:
    """Create a link and void the subject's older ones of the same purpose; return the token
    (only its hash is stored). The caller commits."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    now = utcnow()
    db.execute(update(OneTimeLink).where(
        OneTimeLink.purpose == purpose, OneTimeLink.subject == subject,
        OneTimeLink.used_at.is_(None)).values(used_at=now))
    raw = secrets.token_urlsafe(32)
    lifetime = current_app.config["LINK_SECONDS"][purpose]
    db.add(OneTimeLink(token_hash=token_hash(raw), purpose=purpose, subject=subject,
                       school_id=school_id, data=data or {}, created_at=now,
                       expires_at=now + dt.timedelta(seconds=lifetime)))
    db.flush()
    return raw


def consume(db: Session, raw: str, purposes: tuple[str, ...],
            school_id: int | None = None) -> Consumed | None:
    """Use a link once: None when unknown, used, voided, expired, of another purpose or (given
    school_id) of another school. The caller commits with what the link does."""
    if not raw or len(raw) > 100:
        return None
    query = (update(OneTimeLink)
             .where(OneTimeLink.token_hash == token_hash(raw), OneTimeLink.used_at.is_(None),
                    OneTimeLink.expires_at > utcnow(), OneTimeLink.purpose.in_(purposes))
             .values(used_at=utcnow())
             .returning(OneTimeLink.purpose, OneTimeLink.subject, OneTimeLink.school_id,
                        OneTimeLink.data))
    if school_id is not None:
        query = query.where(OneTimeLink.school_id == school_id)
    row = db.execute(query).first()
    return Consumed(row.purpose, row.subject, row.school_id, dict(row.data)) if row else None


def void(db: Session, purpose: str, subject: str) -> None:
    """Void the subject's unused links of a purpose (e.g. when what they lead to is gone)."""
    db.execute(update(OneTimeLink).where(
        OneTimeLink.purpose == purpose, OneTimeLink.subject == subject,
        OneTimeLink.used_at.is_(None)).values(used_at=utcnow()))
