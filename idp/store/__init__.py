"""The storage contract for short-lived state in Redis: every key the IdP writes, reads, consumes
or revokes is built in store.keys (the key layout, in one place) and touched only here — the SSO
session's hot copy, authorization codes, interactions, the grant and token deny-list, failure and
request counters, pending eID requests — and every Lua script is a named one in store.scripts.
Protocol and view code call these modules; a hot path's one round trip is one call (a script)
or one Batch (a pipeline several calls queue on). Imports nothing of the IdP but its metrics."""

from __future__ import annotations

import redis
from flask import current_app

# Queued writes sent in one round trip (a Redis pipeline); the caller executes it.
Batch = redis.client.Pipeline


def client() -> redis.Redis:
    """This app's Redis client (a standalone server, or the master through Sentinel)."""
    r: redis.Redis = current_app.extensions["redis"]
    return r


def batch(transaction: bool = True) -> Batch:
    """A new batch: the caller queues store calls on it and executes it once."""
    return client().pipeline(transaction=transaction)
