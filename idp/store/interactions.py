"""Pending authorization requests waiting for the person to authenticate (Hydra's "login")."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from flask import current_app

from idp.store import Batch, client, keys

INTERACTION_KEY = keys.INTERACTION
# How long the same browser may ask for an interaction's authorization response again.
RESUME_REPLAY_SECONDS = 30


def start(request: dict[str, Any]) -> str:
    """Store a validated authorization request and return the interaction id."""
    ix = secrets.token_urlsafe(16)
    ttl = current_app.config["INTERACTION_TTL_SECONDS"]
    client().set(keys.interaction(ix), json.dumps({"request": request, "result": None}), ex=ttl)
    return ix


def load(ix: str | None) -> dict[str, Any] | None:
    """Return an interaction, or None when unknown or expired."""
    if not ix or len(ix) > 64:
        return None
    raw = client().get(keys.interaction(ix))
    return json.loads(raw) if raw else None


def finish(
    ix: str, sid: str, data: dict[str, Any] | None = None, pipe: Batch | None = None
) -> None:
    """Record that the person authenticated for this interaction in session sid. data is the
    interaction as already loaded (else it is read again); with pipe, the write is queued
    there and the caller executes it."""
    if data is None:
        data = load(ix)
        if data is None:
            return
    data = {**data, "result": {"sid": sid}}
    ttl = current_app.config["INTERACTION_TTL_SECONDS"]
    # XX: an interaction that expired or was used meanwhile is not brought back.
    (pipe if pipe is not None else client()).set(
        keys.interaction(ix), json.dumps(data), ex=ttl, xx=True
    )


def resumed(ix: str, data: dict[str, Any]) -> bool:
    """Mark a finished interaction as answered, or tell whether a repeat may still be answered.

    The first answer keeps the interaction RESUME_REPLAY_SECONDS more, then it is gone: the
    same browser (the caller checks its session) asking again meanwhile is answered again. A
    proxy passes a GET whose first try died with its process on to another process, and that
    first try may have got as far as this; without the repeat, the person who had just signed
    in would see the sign-in expire."""
    first = data.get("resumed_at")
    now = int(time.time())
    if first is not None:
        return now - int(first) <= RESUME_REPLAY_SECONDS
    client().set(
        keys.interaction(ix),
        json.dumps({**data, "resumed_at": now}),
        ex=RESUME_REPLAY_SECONDS,
        xx=True,
    )
    return True
