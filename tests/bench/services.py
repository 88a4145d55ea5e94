"""The benchmark's own PostgreSQL database and Redis db number, and gunicorn processes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "13"))


def idp_env(database_url: str, redis_url: str, issuer: str, var_dir: Path) -> dict[str, str]:
    """The environment of a benchmark IdP (gunicorn, `idp worker`): fresh secrets, development."""
    from cryptography.fernet import Fernet

    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "IDP_ISSUER": issuer,
        # The load comes from one address: the coarse form limit would refuse it.
        "IDP_FORM_RATE_LIMIT": "100000000 per minute",
        "IDP_SECRET_KEY": secrets.token_urlsafe(32),
        "IDP_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "STUUDIUM_VAR_DIR": str(var_dir),
        "STUUDIUM_ENV": "development",
    }


def create_database() -> tuple[str, str]:
    """Create a fresh database stuudium_bench_<pid>; return (its URL, its name)."""
    name = f"stuudium_bench_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, "", "")), name


def drop_database(name: str) -> None:
    """Drop the benchmark's database (closing any connection left to it)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def own_redis() -> str:
    """Return the URL of the benchmark's Redis db number, flushed."""
    url = f"redis://127.0.0.1:6379/{BENCH_REDIS_DB}"
    flush_redis(url)
    return url


def flush_redis(url: str) -> None:
    """Empty the benchmark's own Redis db number."""
    redis.Redis.from_url(url).flushdb()


class Gunicorn:
    """One gunicorn master (sync workers) that this process started and alone stops."""

    def __init__(self, app: str, port: int, env: dict[str, str], workers: int, log: Path) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env
        self.workers = workers
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gunicorn:
        """Start the master; workers are forked by it."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--workers",
                    str(self.workers),
                    "--worker-class",
                    "sync",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--backlog",
                    "2048",
                    "--timeout",
                    "60",
                    "--log-level",
                    "warning",
                    "--error-logfile",
                    "-",
                    self.app,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /healthz answers on every worker (a few answers in a row)."""
        deadline = time.monotonic() + timeout
        ok = 0
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.app} exited; see {self.log}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    ok += 1
                    if ok >= 2 * self.workers:
                        return
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn {self.app} did not answer /healthz; see {self.log}")

    def stop(self) -> None:
        """Stop the master by its PID (it stops its workers) and wait for it."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def env_float(name: str, default: float) -> float:
    """A number from the environment (unset or empty: the default)."""
    return float(os.environ.get(name) or default)


def env_int(name: str, default: int) -> int:
    """A whole number from the environment (unset or empty: the default)."""
    return int(os.environ.get(name) or default)


class Granian(Gunicorn):
    """One granian server (WSGI; `workers` processes with one blocking thread each, so one
    request at a time per process as gunicorn's sync workers; HTTP/1.1 keep-alive) that this
    process started and alone stops (its workers follow it)."""

    def start(self) -> Granian:
        """Start the server; it starts its worker processes."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "granian",
                    "--interface",
                    "wsgi",
                    "--workers",
                    str(self.workers),
                    "--blocking-threads",
                    "1",
                    "--runtime-threads",
                    "1",
                    "--no-ws",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--backlog",
                    "2048",
                    "--log-level",
                    "warning",
                    self.app,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self
