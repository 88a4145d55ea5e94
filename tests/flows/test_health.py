"""Health of both apps as a probe sees it: alive, ready, and unready before migrations."""

from __future__ import annotations

from pathlib import Path

import requests
from flask import Flask

from tests.support import LiveServer, Tenant, free_port


def test_both_apps_are_alive_and_ready(idp: str, make_tenant, school_app: Flask):
    tenant: Tenant = make_tenant()
    for url in (idp, tenant.url):
        assert requests.get(f"{url}/healthz", timeout=10).text == "ok\n"
        resp = requests.get(f"{url}/readyz", timeout=10)
        assert resp.status_code == 200
        assert resp.json() == {
            "ready": True,
            "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
        }
        assert resp.headers["Cache-Control"] == "no-store"


def test_an_unmigrated_database_is_not_ready(tmp_path: Path, idp_app: Flask):
    from idp import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}",
            "REDIS_URL": idp_app.config["REDIS_URL"],
        }
    )
    server = LiveServer(app, free_port()).start()
    try:
        resp = requests.get(f"{server.url}/readyz", timeout=10)
        assert resp.status_code == 503
        assert resp.json()["checks"] == {"database": "ok", "migrations": "behind", "redis": "ok"}
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        server.stop()
