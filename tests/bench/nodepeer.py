"""The peer of tests/bench/compare.py: oidc-provider (tests/bench/peer/) on Node's cluster.

Started and stopped by PID from here; its primary also stops by itself after a time limit.
Seeded over POST /bench/seed, an endpoint the script serves only when PEER_SEED_KEY is set.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

PEER_DIR = Path(__file__).with_name("peer")
SCRIPT = PEER_DIR / "server.mjs"


def ensure_modules() -> None:
    """Install the pinned packages (npm ci from package-lock.json) when they are missing."""
    if (PEER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed for the peer (apt-get install -y nodejs npm)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True, timeout=300)


def node_version() -> str:
    """The version of node on PATH."""
    node = shutil.which("node") or "node"
    done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    return done.stdout.strip()


def package_version(name: str) -> str:
    """The installed version of one of the peer's npm packages."""
    import json

    path = PEER_DIR / "node_modules" / name / "package.json"
    return str(json.loads(path.read_text())["version"])


class Peer:
    """One node primary (with its cluster workers) that this process started and alone stops."""

    def __init__(
        self, port: int, redis_url: str, workers: int, max_seconds: int, log: Path
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.redis_url = redis_url
        self.workers = workers
        self.max_seconds = max_seconds
        self.log = log
        self.client_id = "bench-school"
        self.client_secret = secrets.token_urlsafe(24)
        self.redirect_uri = "http://127.0.0.1:9/bench/auth/callback"
        self.seed_key = secrets.token_urlsafe(24)
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """The script's environment."""
        return {
            **os.environ,
            "PEER_PORT": str(self.port),
            "PEER_ISSUER": self.url,
            "PEER_REDIS_URL": self.redis_url,
            "PEER_CLIENT_ID": self.client_id,
            "PEER_CLIENT_SECRET": self.client_secret,
            "PEER_REDIRECT_URI": self.redirect_uri,
            "PEER_WORKERS": str(self.workers),
            "PEER_SEED_KEY": self.seed_key,
            "PEER_MAX_SECONDS": str(self.max_seconds),
            "NODE_ENV": "production",
        }

    def start(self) -> Peer:
        """Start the primary; it forks the workers."""
        node = shutil.which("node") or "node"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [node, str(SCRIPT)],
                cwd=PEER_DIR,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /healthz answers a few times in a row (every worker listening)."""
        deadline = time.monotonic() + timeout
        ok = 0
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the peer exited; see {self.log}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    ok += 1
                    if ok >= 4 * self.workers:
                        return
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the peer did not answer /healthz; see {self.log}")

    def seed(self, kind: str, n: int, scope: str, people: list[Any] | None = None) -> Any:
        """Ask the peer to store n persons, codes or refresh tokens; returns what it answers."""
        resp = requests.post(
            self.url + "/bench/seed",
            json={"kind": kind, "n": n, "scope": scope, "people": people or []},
            headers={"X-Bench-Seed": self.seed_key},
            timeout=300,
        )
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        """Stop the primary by its PID (it stops its workers); kill its own group if it hangs."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this process created for it
            proc.wait(timeout=10)
