"""Coarse per-route limits (Flask-Limiter) on the app's own Redis, under the prefix of
store.keys: a flood from one address is refused early; the exact counters stay in counters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from idp.store import keys

LIMITER = Limiter(key_func=get_remote_address, default_limits=[])
View = TypeVar("View", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    """Keep the limiter's windows in the app's Redis (the master through Sentinel too); when
    Redis is away the limit is skipped, and the work behind it answers the 503 page."""
    pool = app.extensions["redis"].connection_pool
    app.config.setdefault("RATELIMIT_STORAGE_URI", "redis://")
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS", {"connection_pool": pool, "key_prefix": keys.LIMITS}
    )
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    LIMITER.init_app(app)


def forms() -> Callable[[View], View]:
    """The limit of a form a person posts: the app's FORM_RATE_LIMIT per client address."""
    limit = LIMITER.limit(lambda: str(current_app.config["FORM_RATE_LIMIT"]), methods=["POST"])

    def decorate(view: View) -> View:
        return cast(View, limit(view))

    return decorate
