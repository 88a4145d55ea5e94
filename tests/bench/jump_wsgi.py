"""WSGI entries for the silent-jump benchmark: `tests.bench.jump_wsgi:idp_app` and
`tests.bench.jump_wsgi:school_app` (configuration from the environment).

Each app is created on first access, so a gunicorn worker of the IdP never builds the school
instance and the other way round (gunicorn looks the name up once per worker, after forking).
"""

from __future__ import annotations

import gc
from typing import Any

_APPS: dict[str, Any] = {}


def _create(name: str) -> Any:
    if name == "idp_app":
        from idp import create_app

        return create_app()
    from school_instance import create_app as create_school_app

    return create_school_app()


def __getattr__(name: str) -> Any:
    if name not in ("idp_app", "school_app"):
        raise AttributeError(name)
    if name not in _APPS:
        _APPS[name] = _create(name)
        gc.freeze()  # as deploy/gunicorn.conf.py's post_worker_init does in production
    return _APPS[name]
