"""Readiness follows the services: /readyz of both apps turns 503 while PostgreSQL or Redis is
down and 200 again when they return; /healthz (the process) stays 200 throughout."""

from __future__ import annotations

import requests

from tests.faults.conftest import FaultIdp, Postgres, RedisServer, wait_for
from tests.support import LiveServer, free_port


def _ready(url: str) -> tuple[int, dict[str, str]]:
    resp = requests.get(f"{url}/readyz", timeout=10)
    return resp.status_code, resp.json()["checks"]


def test_readyz_follows_postgres_and_redis(
    pg_idp: FaultIdp, postgres: Postgres, redis_server: RedisServer
):
    from school_instance import create_app
    from school_instance.cli import upgrade_database

    school_app = create_app(
        {"TESTING": True, "DATABASE_URL": postgres.url, "REDIS_URL": redis_server.url}
    )
    upgrade_database(school_app)
    school = LiveServer(school_app, free_port()).start()
    apps = [pg_idp.url, school.url]
    try:
        for url in apps:
            assert _ready(url) == (200, {"database": "ok", "migrations": "ok", "redis": "ok"})

        postgres.stop("immediate")
        for url in apps:
            status, checks = _ready(url)
            assert status == 503 and checks["database"].startswith("unreachable")
            assert checks["redis"] == "ok"
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        postgres.start()
        for url in apps:
            wait_for(lambda: _ready(url)[0] == 200, 20, "ready after PostgreSQL returned")

        redis_server.kill()
        for url in apps:
            status, checks = _ready(url)
            assert status == 503 and checks["redis"].startswith("unreachable")
            assert checks["database"] == "ok"
        redis_server.start()
        for url in apps:
            wait_for(lambda: _ready(url)[0] == 200, 20, "ready after Redis returned")
    finally:
        school.stop()
        school_app.extensions["db_engine"].dispose()
