"""Revoking what a grant issued: its refresh tokens in SQL, committed at once, and the grant on
the Redis deny-list for its access tokens."""

from __future__ import annotations

from sqlalchemy import update

from idp.models import RefreshToken, utcnow
from idp.store.grants import deny_grants
from shared.db import get_db, open_hot_connection

_REVOKE_PG = (
    "UPDATE refresh_token SET revoked_at = %(now)s"
    " WHERE grant_id = %(grant_id)s AND revoked_at IS NULL"
)


def revoke_grant(grant_id: str) -> None:
    """Revoke every token of a grant; committed at once, even if the request then fails.

    It commits the request's own work (callers are on a path that wrote nothing else; a
    refresh's claim has committed already) — on the request's hot connection when the token
    path took one: a second pooled connection per request would let a burst of replays exhaust
    the pool and deadlock.
    """
    hot = open_hot_connection()
    if hot is not None:
        hot.execute(_REVOKE_PG, {"grant_id": grant_id, "now": utcnow()})
        hot.commit()  # a transaction the request opened; in autocommit, nothing to do
        deny_grants([grant_id])
        return
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
