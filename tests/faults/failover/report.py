"""The report of a failover run: the app's warnings and errors as they came, what the run
counted (journeys, failures and when, confirmed logouts and their tokens, old sessions), the
acceptance over it (problems()), and the printout shown in the test log and kept in
artifacts/faults/."""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.failover.failures import Failure
from tests.faults.failover.journeys import Logout
from tests.faults.failover.plan import CODE_SLACK, GRACE, MIN_JOURNEYS

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "faults"


class LogTap(logging.Handler):
    """Keeps the app's warnings and errors (with the time they came)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[float, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the level and the message (and an exception's last line)."""
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message += f" | {type(exc).__name__}: {str(exc)[:200]}"
        self.records.append((record.created, record.levelname, message[:400]))


@dataclass
class Report:
    """What one scenario counted, and the acceptance over it."""

    name: str
    duration: float
    fault_after: float  # seconds of load before the fault
    recovery: float  # fault start → new primary/master in place
    load: float
    journeys: int
    done: int
    failures: list[Failure]
    fault_at: float
    in_place_at: float
    logouts: list[Logout]
    arrivals: dict[tuple[str, str], float]  # (sid, client_id) -> first token's arrival
    deadlines: dict[str, float]  # sid -> latest arrival the schedule allows
    allowance: float
    bad_tokens: list[str]
    not_ended: list[str]
    revived: list[str]
    old_sessions: int
    signed_out: int
    errors: list[str]
    worker_exit: int | None
    worker_lines: list[str]
    app_log: list[tuple[float, str, str]]
    timeline: list[tuple[float, str]]

    def publish(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Show the figures in the test log even when the test passes, and keep them in
        artifacts/faults/."""
        text = self.summary()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"failover-{re.sub(r'[^a-z]+', '-', self.name.lower())}.txt").write_text(
            text + "\n" + "\n".join(self.problems()) + "\n"
        )
        with capsys.disabled():
            print("\n" + text, flush=True)

    def rel(self, wall: float) -> float:
        """Seconds since the fault started."""
        return wall - self.fault_at

    @property
    def window_end(self) -> float:
        """Until when (relative) failures are allowed."""
        return self.in_place_at - self.fault_at + GRACE

    def late(self) -> list[str]:
        """Confirmed logouts whose token came later than the schedule allows, or never."""
        out = []
        for logout in self.logouts:
            for client_id in logout.subs:
                arrived = self.arrivals.get((logout.sid, client_id))
                deadline = self.deadlines[logout.sid]
                if arrived is None:
                    out.append(
                        f"{logout.sid} confirmed at {self.rel(logout.confirmed):+.2f}s: "
                        f"no token at {client_id}"
                    )
                elif arrived > deadline:
                    out.append(
                        f"{logout.sid} confirmed at {self.rel(logout.confirmed):+.2f}s: token "
                        f"at {client_id} at {self.rel(arrived):+.2f}s, allowed until "
                        f"{self.rel(deadline):+.2f}s"
                    )
        return out

    def unacceptable(self) -> list[Failure]:
        """Failures of a kind never allowed, or outside [fault start, in place + GRACE]."""
        out = []
        for f in self.failures:
            at = self.rel(f.wall)
            in_window = 0.0 <= at <= self.window_end
            if f.kind == "code lost" and (f.issued is None or self.rel(f.issued) < -CODE_SLACK):
                out.append(f)
            elif not (f.accepted and in_window):
                out.append(f)
        return out

    def problems(self, signed_out_allowed: bool = False) -> list[str]:
        """Every way the run missed the acceptance (empty: it passed)."""
        out = [f"test error: {e}" for e in self.errors]
        if self.done < MIN_JOURNEYS:
            out.append(f"only {self.done} journeys finished (at least {MIN_JOURNEYS} needed)")
        out += [
            f"failure at {self.rel(f.wall):+.2f}s in {f.step}: {f.kind} "
            f"(status {f.status}) {f.excerpt[:160]}"
            for f in self.unacceptable()
        ]
        out += [f"late logout token: {line}" for line in self.late()]
        out += [f"invalid logout token: {line}" for line in self.bad_tokens]
        out += [f"confirmed logout not ended in SQL: {sid}" for sid in self.not_ended]
        out += [f"session revived: {line}" for line in self.revived]
        if self.signed_out and not signed_out_allowed:
            out.append(f"{self.signed_out} of {self.old_sessions} old sessions signed out")
        if self.worker_exit is not None:
            out.append(f"the worker exited ({self.worker_exit}) during the run")
        return out

    def summary(self) -> str:
        """The figures as a compact table for the CI log."""
        tokens = sum(len(lo.subs) for lo in self.logouts)
        received = sum(1 for lo in self.logouts for c in lo.subs if (lo.sid, c) in self.arrivals)
        delays = [
            self.arrivals[(lo.sid, c)] - lo.confirmed
            for lo in self.logouts
            for c in lo.subs
            if (lo.sid, c) in self.arrivals
        ]
        lines = [
            f"== failover: {self.name} ({self.duration:.1f} s in all) ==",
            f"load {self.load:.1f} s, fault at +{self.fault_after:.1f} s of load, new "
            f"primary/master in place {self.recovery:.2f} s after it; failures allowed in "
            f"[0, {self.window_end:.2f}] s",
            f"journeys {self.journeys} started, {self.done} finished; confirmed logouts "
            f"{len(self.logouts)} ({sum(lo.retried for lo in self.logouts)} after a retry); "
            f"logout tokens {received}/{tokens} received, latest "
            f"{max(delays, default=0.0):+.2f} s after its page (schedule allows "
            f"{self.allowance:.1f} s); invalid tokens {len(self.bad_tokens)}",
            f"revived {len(self.revived)}; old sessions {self.old_sessions}, signed out "
            f"{self.signed_out}; journey sessions signed out "
            f"{sum(f.kind.startswith('signed out') for f in self.failures)}; "
            f"confirmed logouts not ended in SQL {len(self.not_ended)}; "
            f"worker {'alive' if self.worker_exit is None else f'exited {self.worker_exit}'}",
        ]
        for lo in self.logouts:
            if lo.retried or any(
                self.arrivals.get((lo.sid, c), math.inf) > lo.confirmed + 1 for c in lo.subs
            ):
                arrived = ", ".join(
                    f"{self.rel(self.arrivals[(lo.sid, c)]):+.2f}s"
                    if (lo.sid, c) in self.arrivals
                    else "never"
                    for c in lo.subs
                )
                lines.append(
                    f"  logout {lo.sid[:8]}… confirmed {self.rel(lo.confirmed):+.2f}s"
                    f"{' after a retry' if lo.retried else ''}, its page named "
                    f"{len(lo.page)} schools; tokens at {arrived}"
                )
        events = [(w, what) for w, what in self.timeline if -1 <= self.rel(w) <= 15]
        if events:
            lines.append(
                "  timeline: "
                + "; ".join(f"{self.rel(w):+.2f}s {what[:70]}" for w, what in events[:14])
            )
        groups: dict[tuple[str, str, int | None], list[Failure]] = {}
        for f in self.failures:
            groups.setdefault((f.step, f.kind, f.status), []).append(f)
        if groups:
            lines.append(
                f"  {'step':<34} {'kind':<40} {'status':>6} {'n':>4} {'first':>8} {'last':>8} ok"
            )
        bad = {id(f) for f in self.unacceptable()}
        for (step, kind, status), group in sorted(
            groups.items(), key=lambda item: min(f.wall for f in item[1])
        ):
            times = [self.rel(f.wall) for f in group]
            ok = "no" if any(id(f) in bad for f in group) else "yes"
            lines.append(
                f"  {step[:34]:<34} {kind[:40]:<40} {status or '-'!s:>6} {len(group):>4} "
                f"{min(times):>+8.2f} {max(times):>+8.2f} {ok}"
            )
        for f in self.unacceptable()[:8]:
            issued = f" (issued {self.rel(f.issued):+.2f}s)" if f.issued is not None else ""
            lines.append(f"  ! {self.rel(f.wall):+.2f}s {f.step}{issued}: {f.excerpt[:200]}")
        levels = Counter((level, msg[:90]) for _, level, msg in self.app_log)
        for (level, msg), n in levels.most_common(8):
            lines.append(f"  app log {level} x{n}: {msg}")
        errors = [r for r in self.app_log if r[1] in ("ERROR", "CRITICAL")]
        for wall, level, msg in errors[:3]:
            lines.append(f"  app {level} at {self.rel(wall):+.2f}s: {msg[:300]}")
        worker_warnings = [
            x for x in self.worker_lines if "warning" in x.lower() or "error" in x.lower()
        ]
        lines.append(
            f"  worker output: {len(self.worker_lines)} lines, "
            f"{len(worker_warnings)} warnings/errors"
        )
        for line in worker_warnings[:4]:
            lines.append(f"  worker: {line[:200]}")
        return "\n".join(lines)
