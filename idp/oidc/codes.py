"""Authorization codes in Redis: ≤60 s, consumed atomically, replay recognised by a marker."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import redis

CODE_KEY = "idp:code:"
USED_TTL = 600

# Consumes a code for one client. Answers {1, payload} on success, {0, grant_id} on a replay,
# {2} when the code belongs to another client (left intact), nil when unknown or expired.
_CONSUME = """
local v = redis.call('GET', KEYS[1])
if not v then return nil end
local sep1 = string.find(v, '|', 1, true)
local sep2 = string.find(v, '|', sep1 + 1, true)
local client = string.sub(v, 1, sep1 - 1)
local grant = string.sub(v, sep1 + 1, sep2 - 1)
if client == 'used' then return {0, grant} end
if client ~= ARGV[1] then return {2} end
redis.call('SET', KEYS[1], 'used|' .. grant .. '|', 'EX', ARGV[2])
return {1, string.sub(v, sep2 + 1)}
"""


def _key(code: str) -> str:
    return CODE_KEY + hashlib.sha256(code.encode()).hexdigest()


def issue(r: redis.Redis, client_id: str, grant_id: str, payload: dict[str, Any],
          ttl: int) -> str:
    """Store a new code for client_id and return it."""
    code = secrets.token_urlsafe(32)
    r.set(_key(code), f"{client_id}|{grant_id}|{json.dumps(payload)}", ex=ttl)
    return code


@dataclass(frozen=True)
class Consumed:
    """The outcome of redeeming a code."""

    payload: dict[str, Any] | None = None
    replayed_grant: str | None = None


def consume(r: redis.Redis, code: str, client_id: str) -> Consumed:
    """Redeem a code in one round trip; a second redemption reports the grant to revoke."""
    if not code or len(code) > 200:
        return Consumed()
    result = r.eval(_CONSUME, 1, _key(code), client_id, USED_TTL)
    if not result:
        return Consumed()
    if int(result[0]) == 1:
        return Consumed(payload=json.loads(result[1]))
    if int(result[0]) == 0:
        return Consumed(replayed_grant=result[1])
    return Consumed()
