"""The school instance's storage contract: every key it keeps in Redis is built and touched
here, each keyed by tenant — local sessions (`si:sess:<tenant>:<cookie hash>`, indexed by the
IdP sid and sub: `si:sid:…`, `si:sub:…`; tokens stay on the server), the refresh lock
(`si:lock:…`), OAuth state (`si:oauth:…`), the replay store of tokens (`si:jti:…`) and the
count of pending applications the admin's menu shows (`si:pending:…`)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import redis
from flask import current_app

from school_instance.tenancy import TenantInfo
from shared.security import sha256_hex


def _r() -> redis.Redis:
    r: redis.Redis = current_app.extensions["redis"]
    return r


def _key(tenant: TenantInfo, hashed: str) -> str:
    return f"si:sess:{tenant.id}:{hashed}"


def _sid_key(tenant: TenantInfo, sid: str) -> str:
    return f"si:sid:{tenant.id}:{sid}"


def _sub_key(tenant: TenantInfo, sub: str) -> str:
    return f"si:sub:{tenant.id}:{sub}"


def create(tenant: TenantInfo, data: dict[str, Any]) -> str:
    """Store a new session and return the cookie secret."""
    cookie = secrets.token_urlsafe(32)
    hashed = sha256_hex(cookie)
    ttl = current_app.config["SESSION_MAX_SECONDS"]
    data = {**data, "created": int(time.time())}
    pipe = _r().pipeline(transaction=True)
    pipe.set(_key(tenant, hashed), json.dumps(data), ex=ttl)
    pipe.sadd(_sid_key(tenant, data["sid"]), hashed)
    pipe.expire(_sid_key(tenant, data["sid"]), ttl)
    pipe.sadd(_sub_key(tenant, data["sub"]), hashed)
    pipe.expire(_sub_key(tenant, data["sub"]), ttl)
    pipe.execute()
    return cookie


def load(tenant: TenantInfo, cookie: str | None) -> tuple[str, dict[str, Any]] | None:
    """Return (handle, data) of a live session."""
    if not cookie or len(cookie) > 100:
        return None
    hashed = sha256_hex(cookie)
    raw = _r().get(_key(tenant, hashed))
    return (hashed, json.loads(raw)) if raw else None


def save(tenant: TenantInfo, handle: str, data: dict[str, Any]) -> None:
    """Update a session's data, keeping its expiry."""
    _r().set(_key(tenant, handle), json.dumps(data), keepttl=True)


def delete(tenant: TenantInfo, handle: str) -> None:
    """End one local session."""
    _r().delete(_key(tenant, handle))


def delete_by_sid(tenant: TenantInfo, sid: str) -> int:
    """End every local session of this school under one IdP session; returns how many."""
    members = _r().smembers(_sid_key(tenant, sid))
    keys = [_key(tenant, str(h)) for h in members]
    return int(_r().delete(*keys, _sid_key(tenant, sid))) - 1 if keys else 0


def delete_by_sub(tenant: TenantInfo, sub: str) -> int:
    """End every local session of this school's account sub."""
    members = _r().smembers(_sub_key(tenant, sub))
    keys = [_key(tenant, str(h)) for h in members]
    return int(_r().delete(*keys, _sub_key(tenant, sub))) - 1 if keys else 0


def set_locale_by_sub(tenant: TenantInfo, sub: str, locale: str) -> None:
    """The person chose another language elsewhere: their live sessions here follow."""
    for hashed in _r().smembers(_sub_key(tenant, sub)):
        key = _key(tenant, str(hashed))
        raw = _r().get(key)
        if raw:
            _r().set(key, json.dumps({**json.loads(raw), "locale": locale}), keepttl=True)


def lock(tenant: TenantInfo, handle: str, seconds: int = 10) -> bool:
    """Take the one-refresh-at-a-time lock of a session."""
    return bool(_r().set(f"si:lock:{tenant.id}:{handle}", "1", nx=True, ex=seconds))


def unlock(tenant: TenantInfo, handle: str) -> None:
    """Release the refresh lock."""
    _r().delete(f"si:lock:{tenant.id}:{handle}")


def put_state(tenant: TenantInfo, state: str, data: dict[str, Any]) -> None:
    """Keep an authorization request's state, nonce and verifier server-side."""
    _r().set(
        f"si:oauth:{tenant.id}:{state}",
        json.dumps(data),
        ex=current_app.config["OAUTH_STATE_TTL_SECONDS"],
    )


def take_state(tenant: TenantInfo, state: str | None) -> dict[str, Any] | None:
    """Consume a state once; a replayed or unknown state gives None."""
    if not state or len(state) > 100:
        return None
    raw = _r().getdel(f"si:oauth:{tenant.id}:{state}")
    return json.loads(raw) if raw else None


def claim_once(tenant: TenantInfo, jti: str, seconds: int) -> bool:
    """Record a token id for this school; False when it was seen already (a replay)."""
    return bool(_r().set(f"si:jti:{tenant.id}:{jti}", "1", nx=True, ex=seconds))


def pending_applications(tenant: TenantInfo) -> int | None:
    """The school's count of pending applications as last read from the IdP (None: unknown,
    -1: the IdP did not answer then)."""
    raw = _r().get(f"si:pending:{tenant.id}")
    return int(raw) if raw is not None else None


def remember_pending_applications(tenant: TenantInfo, count: int, seconds: int = 60) -> None:
    """Keep the count briefly: the menu asks the IdP at most once a minute per school."""
    _r().set(f"si:pending:{tenant.id}", str(count), ex=seconds)


def forget_pending_applications(tenant: TenantInfo) -> None:
    """A decision changed the count: the next page reads it anew."""
    _r().delete(f"si:pending:{tenant.id}")
