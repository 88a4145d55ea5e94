"""Revoking what a grant issued: refresh tokens in SQL, access tokens on a Redis deny-list."""

from __future__ import annotations

import time

import redis
from flask import current_app
from sqlalchemy import update

from idp.models import RefreshToken, utcnow
from shared.db import get_db

DENY_GRANT = "idp:deny:grant:"
DENY_JTI = "idp:deny:jti:"


def revoke_grant(grant_id: str) -> None:
    """Revoke every token of a grant; committed at once, even if the request then fails.

    It commits the request's own session (callers are on a path that wrote nothing else, at
    most the claim of the refresh token being refused): a second pooled connection per request
    would let a burst of replays exhaust the pool and deadlock.
    """
    db = get_db()
    db.execute(update(RefreshToken).where(
        RefreshToken.grant_id == grant_id, RefreshToken.revoked_at.is_(None)
    ).values(revoked_at=utcnow()))
    db.commit()
    # A token of the grant still being committed by a racing request escapes the UPDATE above;
    # the refresh grant checks this mark too.
    deny_grants([grant_id])


def deny_grants(grant_ids: list[str]) -> None:
    """Deny-list grants in Redis for as long as any of their tokens can live."""
    if not grant_ids:
        return
    cfg = current_app.config
    ttl = max(cfg["ACCESS_TOKEN_TTL_SECONDS"], cfg["SESSION_MAX_SECONDS"]) + 60
    pipe = current_app.extensions["redis"].pipeline(transaction=False)
    for grant_id in grant_ids:
        pipe.set(DENY_GRANT + grant_id, "1", ex=ttl)
    pipe.execute()


def deny_access_token(jti: str, exp: int) -> None:
    """Deny-list one access token until it expires."""
    ttl = max(1, int(exp - time.time()) + 5)
    r: redis.Redis = current_app.extensions["redis"]
    r.set(DENY_JTI + jti, "1", ex=ttl)
