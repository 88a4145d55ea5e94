"""Revoking what a grant issued: its refresh tokens in SQL, committed at once, and the grant on
the Redis deny-list for its access tokens."""

from __future__ import annotations

from sqlalchemy import update

from idp.models import RefreshToken, utcnow
from idp.store.grants import deny_grants
from shared.db import get_db


def revoke_grant(grant_id: str) -> None:
    """Revoke every token of a grant; committed at once, even if the request then fails.

    It commits the request's own session (callers are on a path that wrote nothing else, at
    most the claim of the refresh token being refused): a second pooled connection per request
    would let a burst of replays exhaust the pool and deadlock.
    """
    db = get_db()
    db.execute(
        update(RefreshToken)
        .where(RefreshToken.grant_id == grant_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.commit()
    # A token of the grant still being committed by a racing request escapes the UPDATE above;
    # the refresh grant checks this mark too.
    deny_grants([grant_id])
