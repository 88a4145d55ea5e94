"""The token endpoint's CPU in one process, without a server: per request, and by library.

`python -m tests.bench.inproc` builds a scratch database (stuudium_inproc_<pid>, dropped at the
end) and Redis db INPROC_REDIS_DB (15, flushed before and after), seeds one school and 64
persons with sessions (tests/bench/seed.py), and calls the WSGI apps directly with prepared
environs: the token floor (tests/bench/baseline.py), our code exchange and our refresh. Rounds
(INPROC_ROUNDS, 5) of INPROC_REQUESTS (2,000) each, interleaved; every answer is checked. It
prints this process's CPU ms per request (the app alone: PostgreSQL's and Redis's CPU are not
in it; compare.py measures those over HTTP), medians with the spread. INPROC_PROFILE=1 adds a
cProfile run of each scenario on a CPU clock, its time grouped by library (self time) and the
top functions (INPROC_SORT: tottime, or cumulative); the breakdown goes to
artifacts/bench/inproc.md as well, each profile to artifacts/bench/inproc-<scenario>.prof.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.bench import cpu, seed, services

REDIS_DB = services.env_int("INPROC_REDIS_DB", 15)
ROUNDS = services.env_int("INPROC_ROUNDS", 5)
REQUESTS = services.env_int("INPROC_REQUESTS", 2000)
PROFILE = os.environ.get("INPROC_PROFILE", "0") == "1"
LOGINS = services.env_int("INPROC_LOGINS", 0)
SORT = os.environ.get("INPROC_SORT", "tottime")
PERSONS = 64
OUT = services.ROOT / "artifacts" / "bench"
log = services.progress("inproc")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def environ(path: str, body: str, authorization: str | None) -> dict[str, Any]:
    """A POST environ as a WSGI server builds it (the body stream is replaced per call)."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ACCEPT": "*/*",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body.encode()),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if authorization:
        env["HTTP_AUTHORIZATION"] = authorization
    return env


class Scenario:
    """One endpoint, its request bodies and the text every good answer holds."""

    def __init__(
        self,
        key: str,
        app: WsgiApp,
        path: str,
        auth: str | None,
        texts: tuple[str, ...],
        status: str = "200",
    ) -> None:
        self.key, self.app, self.path, self.auth, self.texts = key, app, path, auth, texts
        self.status = status
        self.bodies: Iterator[str] = iter(())

    def call(self) -> None:
        """One request through the WSGI app; a wrong answer stops the run. A body line
        "cookie<TAB>form" (seed.logins_pool's) sends the cookie too."""
        status: list[str] = []
        body = next(self.bodies)
        cookie, _, form = body.rpartition("\t")
        env = environ(self.path, form, self.auth)
        if cookie:
            env["HTTP_COOKIE"] = cookie
        chunks = self.app(env, lambda s, _h, _e=None: status.append(s))
        data = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        if not status[0].startswith(self.status) or any(t.encode() not in data for t in self.texts):
            raise RuntimeError(f"{self.key}: {status[0]} {data[:300]!r}")


def logins(app: Any, fx: seed.Fixture, n: int) -> list[str]:
    """n password logins' "cookie<TAB>form" lines, each login page fetched in process."""
    from idp.store import interactions

    with app.app_context():
        ixs = [interactions.start(seed.stored_request(fx)) for _ in range(n)]
    name = app.config["SESSION_COOKIE_NAME"]
    lines = []
    for i, ix in enumerate(ixs):
        client = app.test_client()
        page = client.get(f"/login?ix={ix}")
        match = seed.CSRF_RE.search(page.get_data(as_text=True))
        cookie = client.get_cookie(name)
        if page.status_code != 200 or not match or cookie is None:
            raise RuntimeError(f"login page: {page.status_code}")
        person = fx.people[i % len(fx.people)]
        form = urlencode(
            {
                "csrf_token": match.group(1),
                "ix": ix,
                "email": person.email,
                "password": seed.PASSWORD,
            }
        )
        lines.append(f"{name}={cookie.value}\t{form}")
    return lines


def stores() -> tuple[float, float]:
    """CPU seconds so far of every postgres and redis-server process (shared with anything
    else running on the machine)."""
    pg = rd = 0.0
    for _pid, comm, _ppid, seconds in cpu.processes():
        if comm.startswith("postgres"):
            pg += seconds
        elif comm.startswith("redis-server"):
            rd += seconds
    return pg, rd


def library(filename: str) -> str:
    """Group a profiled function's file by library: a site-packages top folder, ours, stdlib."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    root = str(services.ROOT)
    if filename.startswith(root):
        rel = Path(filename).relative_to(root).parts
        return f"ours: {rel[0]}"
    return "stdlib"


def profiled(sc: Scenario, n: int) -> tuple[list[tuple[str, float]], list[str]]:
    """Profile n requests on a CPU clock: self time by library, and the top functions."""
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    for _ in range(n):
        sc.call()
    prof.disable()
    OUT.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(OUT / f"inproc-{sc.key}.prof")  # for pstats: callers, callees
    stats = pstats.Stats(prof)
    by_lib: dict[str, float] = defaultdict(float)
    total = 0.0
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tt, _ct, _callers) in raw.items():
        by_lib[library(filename)] += tt
        total += tt
    libs = sorted(((k, v / total) for k, v in by_lib.items()), key=lambda kv: -kv[1])
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats(SORT).print_stats(25)
    return libs, out.getvalue().splitlines()


def main() -> int:
    """Seed, then measure each scenario in interleaved rounds; profile when asked."""
    with services.scratch("inproc", REDIS_DB, log, limit=(900, "inproc")) as s:
        assert s.database_url is not None
        issuer = "http://127.0.0.1"
        os.environ.update(services.idp_env(s.database_url, s.redis_url, issuer, s.work / "var"))
        from idp import create_app
        from idp.cli import upgrade_database
        from tests.bench import baseline

        app = create_app({"ISSUER": issuer})
        upgrade_database(app)
        fx = seed.register(app, PERSONS)
        total = REQUESTS * (ROUNDS + 1) + 400 + (REQUESTS if PROFILE else 0)
        texts = ('"access_token"', '"id_token"')
        scenarios = [
            Scenario("floor", baseline.create_app().wsgi_app, "/floor/token", None, texts),
            Scenario("code", app.wsgi_app, "/token", fx.basic_auth, texts),
            Scenario("refresh", app.wsgi_app, "/token", fx.basic_auth, (*texts, "refresh_")),
        ]
        scenarios[0].bodies = iter([f"code=c{i}" for i in range(total)])
        scenarios[1].bodies = iter(seed.codes_pool(app, fx, total))
        scenarios[2].bodies = iter(seed.refresh_pool(app, fx, total))
        log(f"seeded {total} codes and refresh tokens")
        if LOGINS:
            login = Scenario("login", app.wsgi_app, "/login", None, (), status="303")
            login.bodies = iter(logins(app, fx, LOGINS * (ROUNDS + 2)))
            scenarios.append(login)
        for sc in scenarios:
            for _ in range(LOGINS if sc.key == "login" else 400):
                sc.call()
        figures: dict[str, list[float]] = {sc.key: [] for sc in scenarios}
        servers: dict[str, list[tuple[float, float]]] = {sc.key: [] for sc in scenarios}
        for r in range(ROUNDS):
            order = scenarios[r % len(scenarios) :] + scenarios[: r % len(scenarios)]
            for sc in order:
                n = LOGINS if sc.key == "login" else REQUESTS
                before = stores()
                t0 = time.process_time()
                for _ in range(n):
                    sc.call()
                figures[sc.key].append((time.process_time() - t0) * 1000 / n)
                after = stores()
                servers[sc.key].append(
                    ((after[0] - before[0]) * 1000 / n, (after[1] - before[1]) * 1000 / n)
                )
        lines = [
            "| scenario | app CPU ms per request, median (min–max) | vs floor "
            "| PostgreSQL ms | Redis ms |",
            "|---|---|---|---|---|",
        ]
        floor = statistics.median(figures["floor"])
        for key, values in figures.items():
            med = statistics.median(values)
            pg = statistics.median(v[0] for v in servers[key])
            rd = statistics.median(v[1] for v in servers[key])
            lines.append(
                f"| {key} | {med:.3f} ({min(values):.3f}–{max(values):.3f}) | {med / floor:.2f} "
                f"| {pg:.3f} | {rd:.3f} |"
            )
        if PROFILE:
            for sc in scenarios:
                libs, top = profiled(sc, LOGINS if sc.key == "login" else REQUESTS)
                lines += ["", f"### {sc.key}: self time by library", ""]
                lines += [f"- {name}: {share * 100:.1f} %" for name, share in libs if share > 0.005]
                lines += ["", "```", *top[:45], "```"]
        report = "\n".join(lines)
        print(report)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "inproc.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
