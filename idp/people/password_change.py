"""A person changes their own password: checked, hashed, audited; the person's unused one-time
links are void, their other sessions end and this one continues under a new cookie secret."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import AuditEvent, Person, SsoSession, utcnow
from idp.people import one_time_links as links
from idp.people.accounts import hash_password, verify_password
from idp.sso import sessions
from idp.sso.logout import Ended, Scope, end_sessions
from idp.store import counters


def current_password_ok(person: Person, given: str) -> bool:
    """Verify the current password, counting failures: past the login's cap every answer is
    "wrong", so a stolen session cookie cannot be used to guess the password."""
    cfg = current_app.config
    failures = counters.password_change_failures(person.id, cfg["LOGIN_FAILURE_WINDOW_SECONDS"])
    if failures > cfg["LOGIN_MAX_FAILURES"]:
        verify_password(None, given)
        return False
    if not verify_password(person.password_hash, given):
        return False
    counters.clear_password_change_failures(person.id)
    return True


def end_other_sessions(db: Session, person_id: int, keep_sid: str, reason: str) -> Ended:
    """End every session of the person but keep_sid, in the caller's transaction (which
    end_sessions commits when it found some); their schools are sent logout tokens."""
    others = db.scalars(
        select(SsoSession.id).where(
            SsoSession.person_id == person_id,
            SsoSession.ended_at.is_(None),
            SsoSession.id != keep_sid,
        )
    ).all()
    return end_sessions(db, Scope(session_ids=tuple(others)), reason)


def change_password(
    db: Session, person: Person, new_password: str, live: sessions.LiveSession
) -> tuple[Ended, str | None]:
    """Store the new password, void the person's unused links and end the person's other
    sessions in the same commit (every school they were signed in to there is sent a logout
    token); this browser's session goes on under a new cookie secret, returned (None if the
    session ended meanwhile)."""
    person.password_hash = hash_password(new_password)
    person.updated_at = utcnow()
    db.flush()  # the person's row first (lock order), then their links, then their sessions
    links.void_for_person(db, person.id)
    db.add(
        AuditEvent(
            action="password_change",
            actor=f"person:{person.id}",
            person_id=person.id,
            details={"via": "idp_account_page"},
        )
    )
    ended = end_other_sessions(db, person.id, live.sid, "password_change")
    db.commit()  # end_sessions commits only when it found sessions
    try:
        secret, _ = sessions.renew(db, live, live.amr, live.acr, reauthenticated=False)
    except LookupError:
        return ended, None
    return ended, secret
