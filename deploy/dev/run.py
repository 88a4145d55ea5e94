"""`make run`: embedded Redis, migrations, demo data, then every app on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from deploy.dev.diary_demo import MISTYPED
from deploy.dev.seed import (
    DEMO_PASSWORD,
    DEMO_PEOPLE,
    DEMO_SCHOOLS,
    demo_accounts,
    seed,
    seed_diary,
    seed_schools,
)
from shared.config import var_dir
from shared.redis import embedded_url

IDP_PORT = 5000
EID_PORT = 5009  # the eID stand-in (TARA's profile), development only
MAIL_SMTP_PORT, MAIL_WEB_PORT = 1025, 8025


def _wait(url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


def main() -> None:
    """Start the system and keep it running until interrupted."""
    state = var_dir()
    env = dict(os.environ)
    if not env.get("REDIS_URL"):
        env["REDIS_URL"] = embedded_url(state)
        os.environ["REDIS_URL"] = env["REDIS_URL"]
    env.setdefault("STUUDIUM_VAR_DIR", str(state))
    # Every mail goes to the local catcher unless SMTP_URL names a real server.
    env.setdefault("SMTP_URL", f"smtp://127.0.0.1:{MAIL_SMTP_PORT}")

    from idp import create_app
    from idp.cli import upgrade_database

    app = create_app()
    upgrade_database(app)
    clients = seed(app, state / "demo-clients.json")

    from school_instance import create_app as create_school_app
    from school_instance.cli import upgrade_database as upgrade_school_database

    school_app = create_school_app()
    upgrade_school_database(school_app)
    seed_schools(school_app, clients, f"http://localhost:{IDP_PORT}")
    seed_diary(school_app, demo_accounts(app))

    ports = [str(port) for _slug, _name, port in DEMO_SCHOOLS]
    procs = [
        subprocess.Popen([sys.executable, "-m", "deploy.dev.serve", "idp", str(IDP_PORT)], env=env),
        subprocess.Popen([sys.executable, "-m", "deploy.dev.serve", "school", *ports], env=env),
        subprocess.Popen([sys.executable, "-m", "idp.cli", "worker"], env=env),
        subprocess.Popen([sys.executable, "-m", "deploy.dev.eid_standin", str(EID_PORT)], env=env),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deploy.dev.mailcatcher",
                "--smtp-port",
                str(MAIL_SMTP_PORT),
                "--http-port",
                str(MAIL_WEB_PORT),
            ],
            env=env,
        ),
    ]

    def stop(*_args: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    issuer = f"http://localhost:{IDP_PORT}"
    ok = _wait(f"{issuer}/.well-known/openid-configuration")
    print("\nStuudium ID is running" + ("" if ok else " (the IdP did not answer yet)"))
    print(f"  IdP (issuer):   {issuer}/.well-known/openid-configuration")
    for _slug, name, port in DEMO_SCHOOLS:
        print(f"  {name + ':':22}http://localhost:{port}")
    print(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
    for email, given, family, _code, memberships, linked in DEMO_PEOPLE:
        where = ", ".join(f"{s} ({'/'.join(r)})" for s, r in memberships)
        note = " — linked" if linked else ""
        if email == MISTYPED:
            note = " — e-mail mistyped: log in with eID, fix it in the profile"
        print(f"  {email:26} {given} {family}: {where}{note}")
    print(
        f"  eID stand-in:         http://localhost:{EID_PORT} (ID-kaart, Mobiil-ID, Smart-ID "
        "on the login page; pick a demo person by isikukood)"
    )
    print("  Delivery worker: running (logout messages to schools, with retries; mail)")
    print(f"  Mail catcher:   http://localhost:{MAIL_WEB_PORT} (JSON: /api/messages)")
    print(f"\nState lives in {Path(state)}; `make clean` resets it. Ctrl-C stops everything.")
    while True:
        for proc in procs:
            if proc.poll() is not None:
                print(f"a process exited with {proc.returncode}; stopping", file=sys.stderr)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    main()
