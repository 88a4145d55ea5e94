"""Authorization codes in Redis: ≤60 s, consumed atomically, replay recognised by a marker."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from idp.store import Batch, client, keys, scripts
from shared.security import sha256_hex

USED_TTL = 600


def _key(code: str) -> str:
    return keys.code(sha256_hex(code))


def issue(
    client_id: str, grant_id: str, payload: dict[str, Any], ttl: int, pipe: Batch | None = None
) -> str:
    """Store a new code for client_id (queued on pipe when given) and return it."""
    code = secrets.token_urlsafe(32)
    (pipe if pipe is not None else client()).set(
        _key(code), f"{client_id}|{grant_id}|{json.dumps(payload)}", ex=ttl
    )
    return code


@dataclass(frozen=True)
class Consumed:
    """The outcome of redeeming a code."""

    payload: dict[str, Any] | None = None
    replayed_grant: str | None = None


def consume(code: str, client_id: str) -> Consumed:
    """Redeem a code in one round trip; a second redemption reports the grant to revoke."""
    if not code or len(code) > 200:
        return Consumed()
    result = scripts.run(scripts.CONSUME_CODE, client(), [_key(code)], [client_id, USED_TTL])
    if not result:
        return Consumed()
    if int(result[0]) == 1:
        return Consumed(payload=json.loads(result[1]))
    if int(result[0]) == 0:
        return Consumed(replayed_grant=result[1])
    return Consumed()
