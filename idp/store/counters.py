"""Failure and request counters: counted before the work they guard (exact under parallel
attempts, one script), refunded when it succeeds; past a limit every answer is the refusal."""

from __future__ import annotations

from idp.metrics import RATE_LIMITED
from idp.store import Batch, batch, client, keys, scripts


def over_limit(counted: list[str], limits: list[int], window: int, what: str) -> bool:
    """Count one attempt on each counter atomically; True when any passed its limit (counted
    in the metrics as what: login, link, access, apply, ...)."""
    over = bool(scripts.run(scripts.COUNT, client(), counted, [window, *limits]))
    if over:
        RATE_LIMITED.labels(what).inc()
    return over


def refund(counted: list[str], pipe: Batch | None = None) -> None:
    """Take back a counted attempt that succeeded: queued on pipe when given, else sent."""
    own = pipe is None
    pipe = batch(transaction=False) if pipe is None else pipe
    for key in counted:
        pipe.decr(key)
    if own:
        pipe.execute()


def login(school_id: int, email: str, address: str) -> list[str]:
    """The counters of a password login: the account's and the client address's."""
    return [keys.login_failures(school_id, email), keys.address_failures(address)]


def link_uses(counter: str, address: str) -> list[str]:
    """The counter of one-time link uses from a client address."""
    return [keys.link_uses(counter, address)]


def mail_requests(kind: str, school: str, email: str, address: str) -> list[str]:
    """The counters of mails asked for: per typed address and per client address."""
    return [
        keys.mail_requests(kind, school, email),
        keys.mail_requests_by_address(kind, school, address),
    ]


def password_change_failures(person_id: int, window: int) -> int:
    """Count a wrong-or-not current password on the password page; return the count (SET NX EX
    then INCR in one transaction: the counter always carries its expiry)."""
    key = keys.password_change_failures(person_id)
    pipe = batch()
    pipe.set(key, 0, ex=window, nx=True)
    pipe.incr(key)
    return int(pipe.execute()[1])


def clear_password_change_failures(person_id: int) -> None:
    """Forget the password page's failures after a right password."""
    client().delete(keys.password_change_failures(person_id))
