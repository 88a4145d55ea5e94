"""Revoking what a grant issued: refresh tokens in SQL, access tokens on a Redis deny-list."""

from __future__ import annotations

import time

import redis
from flask import current_app
from sqlalchemy import update

from idp.models import RefreshToken, utcnow
from shared.db import separate_transaction

DENY_GRANT = "idp:deny:grant:"
DENY_JTI = "idp:deny:jti:"


def revoke_grant(grant_id: str) -> None:
    """Revoke every token of a grant; committed on its own, even if the request then fails."""
    with separate_transaction() as db:
        db.execute(update(RefreshToken).where(
            RefreshToken.grant_id == grant_id, RefreshToken.revoked_at.is_(None)
        ).values(revoked_at=utcnow()))
    r: redis.Redis = current_app.extensions["redis"]
    r.set(DENY_GRANT + grant_id, "1", ex=current_app.config["ACCESS_TOKEN_TTL_SECONDS"] + 60)


def deny_access_token(jti: str, exp: int) -> None:
    """Deny-list one access token until it expires."""
    ttl = max(1, int(exp - time.time()) + 5)
    r: redis.Redis = current_app.extensions["redis"]
    r.set(DENY_JTI + jti, "1", ex=ttl)
