"""Failover runs for test_failover (issue 18): Redis behind three sentinels, a PostgreSQL
primary with a synchronous standby behind a switched proxy, the faults, journeys under load from
several threads, and the tally of what people and schools met around the fault. The modules,
from the bottom: plan (the numbers), redis_ha, proxy, postgres_ha, faults, served (the IdP and
its worker), failures (which are accepted and why), journeys, report, scenario."""

from tests.faults.failover.faults import Fault, MasterKill, PrimaryKill, SentinelFailover
from tests.faults.failover.postgres_ha import replicated_postgres
from tests.faults.failover.redis_ha import sentinel_redis
from tests.faults.failover.report import Report
from tests.faults.failover.scenario import run_scenario
from tests.faults.failover.served import served_idp

__all__ = [
    "Fault",
    "MasterKill",
    "PrimaryKill",
    "Report",
    "SentinelFailover",
    "replicated_postgres",
    "run_scenario",
    "sentinel_redis",
    "served_idp",
]
