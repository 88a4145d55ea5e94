"""The benchmark's own PostgreSQL database and Redis db number, and gunicorn processes."""

from __future__ import annotations

import abc
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Self, TypeVar
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


def progress(tag: str) -> Callable[[str], None]:
    """A `log` for one benchmark: progress lines on stderr, with its tag and the time."""

    def log(msg: str) -> None:
        """Progress on stderr, with the time."""
        print(f"[{tag} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    return log


def time_limit(seconds: int, what: str) -> None:
    """Raise TimeoutError in the main thread once `seconds` pass (signal.alarm(0) disarms)."""

    def alarm(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"{what} ran past {seconds} s")

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)


def create_database(prefix: str = "stuudium_bench") -> tuple[str, str]:
    """Create a fresh database <prefix>_<pid>; return (its URL, its name)."""
    name = f"{prefix}_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, "", "")), name


def drop_database(name: str) -> None:
    """Drop the benchmark's database (closing any connection left to it)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_database_logged(name: str, log: Callable[[str], None]) -> None:
    """Drop the benchmark's database and say so; a failure is logged, not raised."""
    try:
        drop_database(name)
        log(f"database {name} dropped")
    except Exception as exc:
        log(f"could not drop database {name}: {exc}")


def own_redis() -> str:
    """Return the URL of the benchmark's Redis db number, flushed."""
    url = f"redis://127.0.0.1:6379/{BENCH_REDIS_DB}"
    flush_redis(url)
    return url


def flush_redis(url: str) -> None:
    """Empty the benchmark's own Redis db number."""
    redis.Redis.from_url(url).flushdb()


class Server(abc.ABC):
    """A server process (with the workers it starts) that this process started and alone stops."""

    ready_answers = 2  # /healthz answers in a row per worker before it counts as ready
    stop_seconds = 30.0  # how long a SIGTERM may take before SIGKILL
    kill_group = False  # SIGKILL the process group it leads rather than the process alone

    def __init__(self, port: int, workers: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.workers = workers
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """What the errors call it."""
        return "the server"

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The command line that starts it (each kind of server says its own)."""

    def cwd(self) -> Path:
        """The folder it runs in."""
        return ROOT

    def environment(self) -> dict[str, str]:
        """Its environment."""
        return dict(os.environ)

    def start(self) -> Self:
        """Start it in a session of its own, output to the log; it starts its workers."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.cwd(),
                env=self.environment(),
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
                raise RuntimeError(f"{self.name} exited; see {self.log}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    ok += 1
                    if ok >= self.ready_answers * self.workers:
                        return
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /healthz; see {self.log}")

    def stop(self) -> None:
        """Stop it by its PID (it stops its workers) and wait; SIGKILL when it hangs."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.stop_seconds)
        except subprocess.TimeoutExpired:
            if self.kill_group:
                os.killpg(proc.pid, signal.SIGKILL)  # the session this process created for it
            else:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class Gunicorn(Server):
    """One gunicorn master (sync workers) that this process started and alone stops; tree:
    another checkout whose code it serves instead of this one's."""

    def __init__(
        self,
        app: str,
        port: int,
        env: dict[str, str],
        workers: int,
        log: Path,
        tree: Path | None = None,
    ) -> None:
        super().__init__(port, workers, log)
        self.app = app
        self.env = env if tree is None else {**env, "PYTHONPATH": str(tree)}
        self.tree = tree

    def cwd(self) -> Path:
        """This checkout, or the other one it serves."""
        return self.tree or ROOT

    @property
    def name(self) -> str:
        """What the errors call it."""
        return f"gunicorn {self.app}"

    def environment(self) -> dict[str, str]:
        """The environment it was given."""
        return self.env

    def binds(self) -> list[str]:
        """The --bind arguments: its one port on the loopback."""
        return ["--bind", f"127.0.0.1:{self.port}"]

    def command(self) -> list[str]:
        """The master's command line; it forks the workers."""
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            *self.binds(),
            "--backlog",
            "2048",
            "--timeout",
            "60",
            "--log-level",
            "warning",
            "--error-logfile",
            "-",
            self.app,
        ]


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

    def command(self) -> list[str]:
        """The server's command line; it starts its worker processes."""
        return [
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
        ]


S = TypeVar("S", bound=Server)


@dataclass
class Scratch:
    """A run's temporary folder, own database and Redis db, and the servers to stop first."""

    work: Path
    redis_url: str
    database_url: str = ""
    db_name: str | None = None
    stops: list[Callable[[], object]] = field(default_factory=list)

    def own(self, server: S) -> S:
        """Stop this server when the run ends (the last owned stops first)."""
        self.stops.append(server.stop)
        return server


@contextmanager
def scratch(
    tag: str,
    redis_db: int,
    log: Callable[[str], None],
    *,
    database_prefix: str | None = None,
    limit: tuple[int, str] | None = None,
) -> Iterator[Scratch]:
    """A time limit, a folder, a fresh database <prefix>_<pid>, Redis db flushed; undone after."""
    if limit is not None:
        time_limit(*limit)
    s = Scratch(
        Path(tempfile.mkdtemp(prefix=f"stuudium-{tag}-")), f"redis://127.0.0.1:6379/{redis_db}"
    )
    try:
        s.database_url, s.db_name = create_database(database_prefix or f"stuudium_{tag}")
        flush_redis(s.redis_url)
        log(f"database {s.db_name} created; Redis db {redis_db} flushed")
        yield s
    finally:
        if limit is not None:
            signal.alarm(0)
        for stop in reversed(s.stops):
            stop()
        try:
            flush_redis(s.redis_url)
        except Exception as exc:
            log(f"could not flush Redis db {redis_db}: {exc}")
        if s.db_name is not None:
            drop_database_logged(s.db_name, log)
        shutil.rmtree(s.work, ignore_errors=True)
