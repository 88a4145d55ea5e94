"""What a journey step that failed is, and which failures are accepted and why: the retry page,
the token endpoint's 503 and temporarily_unavailable, a code lost with the old Redis master and,
where the PostgreSQL primary is killed, a login lost with it; classify() sorts an answer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

RETRY_PAGE = "Teenus on ajutiselt kättesaamatu"
SIGN_IN_EXPIRED = "Sisselogimine aegus"


# The failures a person or a school may meet while storage fails over, and why each is one
# that they retry. Anything else — a 500, a Traceback, no answer, a session signed out, a
# sign-in that "expired", a redirect with server_error (RFC 6749 §4.1.2.1 keeps it for an
# unexpected condition, the redirect form of a 500, while a storage failover is expected and
# has temporarily_unavailable) — is never acceptable.
ACCEPTED = {
    "503 page": "the retry page (503, Retry-After): the person tries again",
    "token 503": "the token endpoint answers 503 (HTTP's own 'retry later'): the school retries",
    "temporarily_unavailable": (
        "RFC 6749 §4.1.2.1 error for a server that cannot answer now, at authorize or at the "
        "token endpoint: the school starts the sign-in again"
    ),
    "code lost": (
        "invalid_grant for a code issued in the window: it lived only in Redis and went with "
        "the old master; the school starts the sign-in again, as for any invalid_grant"
    ),
}
# Only where PostgreSQL's primary is killed: a password login's commit does not wait for its
# WAL flush by design (docs/ARCHITECTURE.md: "a crash loses only a login"), so the code of a
# session lost with the primary is refused.
LOGIN_LOST = "login lost with the primary"


@dataclass
class Failure:
    """One step that did not give what the journey needed."""

    wall: float  # time.time() of the answer (or of giving up on it)
    step: str
    kind: str
    accepted: bool  # a kind of ACCEPTED (the window is checked separately)
    status: int | None
    excerpt: str
    issued: float | None = None  # when the code or interaction it needed was issued


class StepFailed(Exception):
    """A journey step failed (recorded)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.kind)
        self.failure = failure


def location_of(resp: requests.Response) -> str:
    """The absolute URL an answer redirects to (its own URL when it has no Location)."""
    return urljoin(resp.url, resp.headers.get("Location", ""))


def excerpt_of(resp: requests.Response) -> str:
    """What an answer says, for the report: its Location, else its text without the tags."""
    location = resp.headers.get("Location")
    if location:
        return f"Location: {location[:200]}"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", resp.text)).strip()
    return text[:300]


def classify(step: str, resp: requests.Response, lost_logins: bool = False) -> tuple[str, bool]:
    """(kind, accepted) of an answer a journey step could not use."""
    body = resp.text
    if "Traceback" in body:
        return "Traceback in the body", False
    if resp.status_code == 500:
        return "500", False
    token_endpoint = resp.request.path_url.startswith("/token") if resp.request else False
    if resp.status_code == 503:
        if resp.headers.get("Retry-After") and RETRY_PAGE in body:
            return "503 page", True
        if token_endpoint:
            return "token 503", True
        return "503 without Retry-After or the retry page", False
    if token_endpoint:
        try:
            answer = resp.json()
        except ValueError:
            answer = {}
        error = answer.get("error") if isinstance(answer, dict) else None
        described = str(answer.get("error_description", "")) if isinstance(answer, dict) else ""
        if error == "temporarily_unavailable" and resp.status_code in (400, 503):
            return "temporarily_unavailable", True
        if error == "invalid_grant" and "invalid or expired" in described:
            return "code lost", True
        if error == "invalid_grant" and "session has ended" in described and lost_logins:
            return LOGIN_LOST, True
        return f"token {resp.status_code} {error}: {described}", False
    if resp.status_code in (302, 303):
        params = {k: v[0] for k, v in parse_qs(urlsplit(location_of(resp)).query).items()}
        error = params.get("error")
        if error == "temporarily_unavailable":
            return "temporarily_unavailable", True
        if error == "login_required":
            return "signed out (login_required)", False
        if error:
            return f"authorize error={error}", False
        return f"unexpected redirect ({step})", False
    if resp.status_code == 400 and SIGN_IN_EXPIRED in body:
        return "sign-in expired page (interaction lost)", False
    if resp.status_code == 200 and 'name="password"' in body and step == "login post":
        return "login refused (the form again)", False
    return f"unexpected {resp.status_code}", False
