"""WSGI entry of the IdP for gunicorn in the benchmarks (configuration from the environment)."""

from __future__ import annotations

from idp import create_app

app = create_app()
