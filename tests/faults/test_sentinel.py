"""REDIS_URL through Sentinel (the Kubernetes manifests' Redis): the client finds the master
the sentinel names, and the app is ready on it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from shared.redis import connect
from tests.faults.conftest import REDIS_SERVER, FaultIdp, RedisServer, wait_for
from tests.support import LiveServer, free_port


def test_the_apps_reach_redis_through_a_sentinel(
    tmp_path: Path, redis_server: RedisServer, idp: FaultIdp
):
    from idp import create_app

    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor stuudium 127.0.0.1 {redis_server.port} 1\n"
    )
    sentinel = subprocess.Popen(
        [REDIS_SERVER, str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"redis+sentinel://127.0.0.1:{port}/stuudium/3"

        def answers() -> bool:
            try:
                return bool(connect(url).ping())
            except Exception:  # noqa: BLE001 (not up yet: any failure means retry)
                return False

        wait_for(answers, 15, "the sentinel")
        client = connect(url)
        client.set("through-sentinel", "jah")
        direct = connect(f"redis://127.0.0.1:{redis_server.port}/3")
        assert direct.get("through-sentinel") == "jah"

        app = create_app(
            {
                **{
                    k: idp.app.config[k]
                    for k in ("DATABASE_URL", "KEY_ENCRYPTION_KEYS", "SECRET_KEY")
                },
                "REDIS_URL": url,
                "TESTING": True,
            }
        )
        server = LiveServer(app, free_port()).start()
        try:
            assert (
                requests.get(f"{server.url}/readyz", timeout=10).json()["checks"]["redis"] == "ok"
            )
        finally:
            server.stop()
    finally:
        sentinel.kill()
        sentinel.wait(10)


def test_a_sentinel_url_names_its_service():
    with pytest.raises(ValueError, match="SERVICE"):
        connect("redis+sentinel://127.0.0.1:26379/")
