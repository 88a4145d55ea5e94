"""Fixtures of the flow tests that need an eID upstream: the stand-in of deploy/dev served over
real HTTP, with the IdP configured as its client, and its tamper hook for hostile variants."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from deploy.dev.eid_standin import EidPerson, StandIn, create_standin
from tests.support import LiveServer, free_port

CLIENT_ID, CLIENT_SECRET = "stuudium-id-test", secrets.token_urlsafe(32)


@dataclass
class Upstream:
    """The stand-in as the test runs it: its state (people, tamper hook) and its URL."""

    url: str
    state: StandIn

    def add(self, isikukood: str, given: str, family: str) -> None:
        """Put a person in the stand-in's list (names as the state's register has them)."""
        self.state.people.append(EidPerson(isikukood, given, family))


@pytest.fixture(scope="module")
def upstream(idp_app: Flask, idp: str) -> Iterator[Upstream]:
    """The stand-in on a free port, and the IdP configured as its client."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_standin(url, {CLIENT_ID: (CLIENT_SECRET, [f"{idp}/eid/callback"])}, [])
    server = LiveServer(app, port).start()
    saved = {
        k: idp_app.config.get(k)
        for k in ("EID_ISSUER", "EID_CLIENT_ID", "EID_CLIENT_SECRET", "EID_REDIRECT_URI")
    }
    idp_app.config.update(
        EID_ISSUER=url,
        EID_CLIENT_ID=CLIENT_ID,
        EID_CLIENT_SECRET=CLIENT_SECRET,
        EID_REDIRECT_URI=None,
    )
    yield Upstream(url, app.extensions["eid_standin"])
    idp_app.config.update(saved)
    server.stop()


@pytest.fixture
def tamper(upstream: Upstream) -> Iterator[Callable[[Callable[..., Any]], None]]:
    """Make the stand-in hostile for one test: a hook that changes the ID token it signs."""

    def use(hook: Callable[..., Any]) -> None:
        upstream.state.tamper = hook

    yield use
    upstream.state.tamper = None
