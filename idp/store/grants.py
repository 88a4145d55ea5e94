"""The deny-list: revoked grants and access tokens, marked for as long as their tokens live."""

from __future__ import annotations

import time

from flask import current_app

from idp.store import batch, client, keys


def deny_grants(grant_ids: list[str]) -> None:
    """Deny-list grants in Redis for as long as any of their tokens can live."""
    if not grant_ids:
        return
    cfg = current_app.config
    ttl = max(cfg["ACCESS_TOKEN_TTL_SECONDS"], cfg["SESSION_MAX_SECONDS"]) + 60
    pipe = batch(transaction=False)
    for grant_id in grant_ids:
        pipe.set(keys.denied_grant(grant_id), "1", ex=ttl)
    pipe.execute()


def deny_access_token(jti: str, exp: int) -> None:
    """Deny-list one access token until it expires."""
    ttl = max(1, int(exp - time.time()) + 5)
    client().set(keys.denied_jti(jti), "1", ex=ttl)


def access_token_state(jti: str, grant_id: str, sid: str) -> tuple[bool, bool, bool]:
    """(token denied, grant denied, session live) for an access token, in one round trip."""
    pipe = batch(transaction=False)
    pipe.exists(keys.denied_jti(jti))
    pipe.exists(keys.denied_grant(grant_id))
    pipe.exists(keys.sid(sid))
    denied_jti, denied_grant, alive = pipe.execute()
    return bool(denied_jti), bool(denied_grant), bool(alive)


def token_denied(jti: str) -> bool:
    """Whether one access token is deny-listed."""
    return bool(client().exists(keys.denied_jti(jti)))
