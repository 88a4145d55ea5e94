"""The dev mail catcher's JSON list (http://localhost:8025/api/messages), as the tests read it."""

from __future__ import annotations

import time
from typing import Any

import requests

MAIL = "http://localhost:8025/api/messages"


def mail_to(address: str) -> list[dict[str, Any]]:
    """Every message the catcher holds for address, oldest first."""
    try:
        messages = requests.get(MAIL, timeout=2).json()["messages"]
    except requests.RequestException:
        return []
    return [m for m in messages if address in m["to"]]


def mail_link(address: str, count: int, seconds: float = 30) -> str:
    """The one-time link in the count-th message to address (waits for the worker)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        mine = mail_to(address)
        if len(mine) >= count:
            links = [u for u in mine[count - 1]["links"] if "#" in u]
            assert len(links) == 1, mine[count - 1]
            return str(links[0])
        time.sleep(0.3)
    raise AssertionError(f"no message {count} to {address} within {seconds} s")
