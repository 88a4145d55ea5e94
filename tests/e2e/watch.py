"""A watched browser page: every navigation it makes and every problem it meets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Watched:
    """A page with the URLs it navigated to and the problems seen (page errors, console errors,
    failed loads other than the favicon)."""

    page: Any
    shots: Path
    prefix: str
    navigations: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        """Save a full-page screenshot as <prefix><name>.png."""
        self.page.screenshot(path=str(self.shots / f"{self.prefix}{name}.png"), full_page=True)


def watched_page(chromium: Any, shots: Path, prefix: str, **context: Any) -> Watched:
    """Open a page in a new context (desktop size and Estonian unless told otherwise) and
    record its navigations and problems."""
    options = {"viewport": {"width": 1280, "height": 800}, "locale": "et-EE", **context}
    ctx = chromium.new_context(**options)
    ctx.set_default_timeout(15_000)
    w = Watched(ctx.new_page(), shots, prefix)
    page = w.page
    page.on("request", lambda r: w.navigations.append(r.url) if r.is_navigation_request() else None)
    page.on("pageerror", lambda e: w.problems.append(f"page error: {e}"))
    # Console errors (a CSP violation, a script error) and failed loads, the favicon aside.
    page.on(
        "console",
        lambda m: (
            w.problems.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            w.problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    return w
