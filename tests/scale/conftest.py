"""Scale-out fixtures: the fault tests' own PostgreSQL cluster and Redis server."""

from tests.faults.conftest import postgres, receivers, redis_server  # noqa: F401 (fixtures)
