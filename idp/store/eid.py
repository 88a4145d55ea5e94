"""Pending upstream eID requests: what finishes them (an interaction or a link attempt), the
nonce, the PKCE verifier, the browser binding; each state used once."""

from __future__ import annotations

import json
from typing import Any

from idp.store import batch, client, keys


def remember(state_hash: str, pending: dict[str, Any], ttl: int) -> None:
    """Keep a pending request until the upstream answers (or the interaction time ends)."""
    client().set(keys.eid_pending(state_hash), json.dumps(pending), ex=ttl)


def take(state_hash: str) -> dict[str, Any] | None:
    """Read and delete a pending request atomically: each state is used once."""
    pipe = batch()
    pipe.get(keys.eid_pending(state_hash))
    pipe.delete(keys.eid_pending(state_hash))
    raw, deleted = pipe.execute()
    return json.loads(raw) if raw and deleted else None
