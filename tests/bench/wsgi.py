"""WSGI entry of the IdP for gunicorn in the benchmarks (configuration from the environment)."""

from __future__ import annotations

import gc

from idp import create_app

app = create_app()
gc.freeze()  # as deploy/gunicorn.conf.py's post_worker_init does in production
