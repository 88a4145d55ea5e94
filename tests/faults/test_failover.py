"""Issue 18: journeys under load from several threads through a Redis Sentinel failover, a Redis
master SIGKILL and a PostgreSQL primary SIGKILL with its synchronous standby promoted behind a
switched proxy. Failures only between the fault's start and 5 s after the new primary/master is
in place, each a retry page or a protocol error a school retries; every confirmed logout's
token at both schools within the worker's retry schedule; no session revived; no session made
before the fault signed out by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import RedisServer, own_database
from tests.faults.failover import (
    MasterKill,
    PrimaryKill,
    Report,
    SentinelFailover,
    replicated_postgres,
    run_scenario,
    sentinel_redis,
    served_idp,
)


def _passed(report: Report, capsys: pytest.CaptureFixture[str]) -> None:
    report.publish(capsys)
    problems = report.problems()
    assert not problems, "\n".join([report.summary(), "problems:", *problems[:40]])


@pytest.mark.parametrize(
    "fault", [SentinelFailover, MasterKill], ids=["sentinel-failover", "master-sigkill"]
)
def test_journeys_through_a_redis_failover(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault: type[SentinelFailover | MasterKill],
):
    monkeypatch.setenv("STUUDIUM_VAR_DIR", str(tmp_path))
    with (
        sentinel_redis(tmp_path) as cache,
        own_database(tmp_path) as database,
        served_idp(tmp_path, database, cache.url) as served,
    ):
        report = run_scenario(served, fault(cache))
    _passed(report, capsys)


def test_journeys_through_a_postgres_primary_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("STUUDIUM_VAR_DIR", str(tmp_path))
    cache = RedisServer(tmp_path)
    try:
        with replicated_postgres() as pg:
            cache.start()
            with served_idp(tmp_path, pg.url, cache.url) as served:
                report = run_scenario(served, PrimaryKill(pg), lost_logins=True)
    finally:
        cache.kill()
    _passed(report, capsys)
