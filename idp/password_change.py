"""A person changes their own password: checked, hashed, audited; the person's unused one-time
links are void, their other sessions end and this one continues under a new cookie secret."""

from __future__ import annotations

import redis
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import links, sessions
from idp.accounts import hash_password, verify_password
from idp.logout import Ended, Scope, end_sessions
from idp.models import AuditEvent, Person, SsoSession, utcnow


def _failures_key(person_id: int) -> str:
    return f"idp:fail:pwchange:{person_id}"


def current_password_ok(person: Person, given: str) -> bool:
    """Verify the current password, counting failures: past the login's cap every answer is
    "wrong", so a stolen session cookie cannot be used to guess the password."""
    r: redis.Redis = current_app.extensions["redis"]
    cfg = current_app.config
    key = _failures_key(person.id)
    # SET NX EX then INCR in one transaction: the counter always carries its expiry.
    pipe = r.pipeline(transaction=True)
    pipe.set(key, 0, ex=cfg["LOGIN_FAILURE_WINDOW_SECONDS"], nx=True)
    pipe.incr(key)
    failures = pipe.execute()[1]
    if failures > cfg["LOGIN_MAX_FAILURES"]:
        verify_password(None, given)
        return False
    if not verify_password(person.password_hash, given):
        return False
    r.delete(key)
    return True


def end_other_sessions(db: Session, person_id: int, keep_sid: str, reason: str) -> Ended:
    """End every session of the person but keep_sid, in the caller's transaction (which
    end_sessions commits when it found some); their schools are sent logout tokens."""
    others = db.scalars(select(SsoSession.id).where(
        SsoSession.person_id == person_id, SsoSession.ended_at.is_(None),
        SsoSession.id != keep_sid)).all()
    return end_sessions(db, Scope(session_ids=tuple(others)), reason)


def change_password(db: Session, person: Person, new_password: str,
                    live: sessions.LiveSession) -> tuple[Ended, str | None]:
    """Store the new password, void the person's unused links and end the person's other
    sessions in the same commit (every school they were signed in to there is sent a logout
    token); this browser's session goes on under a new cookie secret, returned (None if the
    session ended meanwhile)."""
    person.password_hash = hash_password(new_password)
    person.updated_at = utcnow()
    db.flush()  # the person's row first (lock order), then their links, then their sessions
    links.void_for_person(db, person.id)
    db.add(AuditEvent(action="password_change", actor=f"person:{person.id}",
                      person_id=person.id, details={"via": "idp_account_page"}))
    ended = end_other_sessions(db, person.id, live.sid, "password_change")
    db.commit()  # end_sessions commits only when it found sessions
    try:
        secret, _ = sessions.renew(db, live, live.amr, live.acr, reauthenticated=False)
    except LookupError:
        return ended, None
    return ended, secret
