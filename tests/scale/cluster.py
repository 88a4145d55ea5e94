"""Processes of a scale-out test: nginx (Debian's, with deploy/nginx/proxy.conf) in front of
several IdP gunicorn masters. Each is started and stopped by the test, by its PID."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.faults.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class IdpProcess:
    """`gunicorn -c deploy/gunicorn.conf.py 'idp:create_app()'` on a loopback port."""

    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        self.port, self.env, self.log = port, env, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> IdpProcess:
        """Start the master in a process group of its own and wait until it is ready."""
        metrics = self.log.parent / f"metrics-{self.port}"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    str(ROOT / "deploy/gunicorn.conf.py"),
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "idp:create_app()",
                ],
                cwd=ROOT,
                env={**self.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            try:
                return requests.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(ready, 60, f"IdP on port {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL the master and its workers at once (a crashed node)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


class Nginx:
    """nginx with a configuration of its own in a directory of its own (never the system's)."""

    def __init__(self, directory: Path, port: int, upstreams: list[int]) -> None:
        self.dir, self.port = directory, port
        self.url = f"http://127.0.0.1:{port}"
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstreams
        )
        temp = "\n".join(
            f"    {kind}_temp_path {directory / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf = directory / "nginx.conf"
        self.conf.write_text(f"""{user}worker_processes 1;
daemon off;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
{temp}
    upstream stuudium_idp {{
        least_conn;
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include {ROOT / "deploy/nginx/proxy.conf"};
            proxy_pass http://stuudium_idp;
        }}
    }}
}}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        """Check the configuration, start nginx and wait until it proxies."""
        subprocess.run(
            [NGINX, "-t", "-q", "-p", str(self.dir), "-c", str(self.conf)],
            check=True,
            timeout=30,
            capture_output=True,
        )
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def proxies() -> bool:
            try:
                return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(proxies, 20, "nginx")
        return self

    def stop(self) -> None:
        """Stop nginx (SIGQUIT: graceful), SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
