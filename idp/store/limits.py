"""Coarse per-route limits on the forms a person posts, kept by the limits library (the one
Flask-Limiter is built on) in a fixed window on the app's own Redis, under the prefix of
store.keys: a flood from one address is refused early; the exact counters stay in counters.

Flask-Limiter itself was tried and measured: its before-request hook resolves the limits of
every request, limited or not, and cost about 0.08 ms of CPU on each (some 5 % of a code
exchange's worker CPU); applied by this decorator, only the limited forms pay, one round trip."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis
from flask import Flask, abort, current_app, request
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from idp.store import keys

LIMITER = "store.limiter"
View = TypeVar("View", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    """Keep the windows in the app's Redis: the same pool (the master through Sentinel too)."""
    storage = RedisStorage(
        "redis://", connection_pool=app.extensions["redis"].connection_pool, key_prefix=keys.LIMITS
    )
    app.extensions[LIMITER] = FixedWindowRateLimiter(storage)


def _allowed() -> bool:
    """Count this POST in its address's window for this form; True while under the limit.
    When Redis is away the limit is skipped: the work behind it answers the 503 page."""
    limit = parse(str(current_app.config["FORM_RATE_LIMIT"]))
    try:
        return bool(
            current_app.extensions[LIMITER].hit(
                limit, str(request.endpoint), request.remote_addr or "-"
            )
        )
    except redis.RedisError:
        return True


def forms() -> Callable[[View], View]:
    """Limit a view's POSTs to the app's FORM_RATE_LIMIT per client address (429 past it)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            if request.method == "POST" and not _allowed():
                abort(429)
            return view(*args, **kwargs)

        return cast(View, limited)

    return decorate
