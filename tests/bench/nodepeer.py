"""The peer of tests/bench/compare.py: oidc-provider (tests/bench/peer/) on Node's cluster.

Started and stopped by PID from here; its primary also stops by itself after a time limit.
Seeded over POST /bench/seed, an endpoint the script serves only when PEER_SEED_KEY is set.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import requests

from tests.bench.services import Server

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


class Peer(Server):
    """One node primary (with its cluster workers) that this process started and alone stops."""

    ready_answers = 4  # every worker listening
    stop_seconds = 15.0
    kill_group = True

    def __init__(
        self, port: int, redis_url: str, workers: int, max_seconds: int, log: Path
    ) -> None:
        super().__init__(port, workers, log)
        self.redis_url = redis_url
        self.max_seconds = max_seconds
        self.client_id = "bench-school"
        self.client_secret = secrets.token_urlsafe(24)
        self.redirect_uri = "http://127.0.0.1:9/bench/auth/callback"
        self.seed_key = secrets.token_urlsafe(24)

    @property
    def name(self) -> str:
        """What the errors call it."""
        return "the peer"

    def environment(self) -> dict[str, str]:
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

    def command(self) -> list[str]:
        """The primary's command line; it forks the workers."""
        return [shutil.which("node") or "node", str(SCRIPT)]

    def cwd(self) -> Path:
        """The peer's folder (its node_modules)."""
        return PEER_DIR

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
