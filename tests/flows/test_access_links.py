"""Saada mulle ligipääsuandmed: the same answer for every address, a one-time login link that
signs the person in at that school, single use, expiring, bound to purpose and school, never
used by GET/HEAD, and counted against brute force per school."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.flows.mail_links import follow_to, link_of, post_form, use_link
from tests.support import CSRF_RE, Browser


def _ask(idp: str, slug: str, email: str) -> tuple[int, str, float]:
    """Ask for a login link; the answer's status, body and the POST's own duration."""
    browser = Browser(idp)
    url = f"{idp}/s/{slug}/access"
    csrf = CSRF_RE.search(browser.http.get(url, timeout=10).text)
    assert csrf
    started = time.perf_counter()
    resp = browser.http.post(
        url, data={"csrf_token": csrf.group(1), "email": email}, allow_redirects=False, timeout=10
    )
    return resp.status_code, resp.text, time.perf_counter() - started


def test_login_link_signs_in_at_the_school_once(idp, make_tenant, make_person, inbox) -> None:
    tenant = make_tenant()
    person = make_person(tenant.client, given_name="Külli", family_name="Männik")
    status, body, _ = _ask(idp, tenant.client.slug, person.email.upper())
    assert status == 200 and 'id="sent"' in body
    [message] = inbox(person.email)
    assert tenant.client.name in message["subject"]
    page, token = link_of(message)
    assert page == f"{idp}/s/{tenant.client.slug}/signin?ui_locales=et" and len(token) >= 43

    browser = Browser(idp)
    # Mail scanners open links: neither GET nor HEAD uses one, and the page does not name it.
    for method in ("GET", "HEAD"):
        opened = browser.http.request(method, page, timeout=10)
        assert opened.status_code == 200
        assert opened.headers["Referrer-Policy"] == "no-referrer"
        assert token not in opened.text
    final = follow_to(browser, use_link(browser, message), tenant.url)
    assert "Külli Männik" in final.text

    again = use_link(Browser(idp), message)
    assert again.status_code == 410 and 'id="invalid"' in again.text
    assert f'href="/s/{tenant.client.slug}/access"' in again.text


def test_same_answer_for_known_and_unknown_addresses(idp, make_tenant, make_person, inbox) -> None:
    tenant = make_tenant()
    person = make_person(tenant.client)
    unknown = "nobody-" + person.email
    known_runs: list[tuple[int, str, float]] = []
    unknown_runs: list[tuple[int, str, float]] = []
    for _ in range(8):
        for email, runs in ((person.email, known_runs), (unknown, unknown_runs)):
            runs.append(_ask(idp, tenant.client.slug, email))
    assert {(s, b) for s, b, _ in known_runs} == {(s, b) for s, b, _ in unknown_runs}
    assert len({(s, b) for s, b, _ in known_runs}) == 1
    # The request does the same work either way (the mail sender resolves the address later),
    # so no branch is slower by a password hash or a mail server's round trip.
    known_time = statistics.median(t for _, _, t in known_runs)
    unknown_time = statistics.median(t for _, _, t in unknown_runs)
    assert abs(known_time - unknown_time) < 0.03, (known_time, unknown_time)
    assert len(inbox(person.email)) == 8 and inbox(unknown) == []


def test_newer_link_voids_older_and_links_expire(
    idp, idp_app, make_tenant, make_person, inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = make_tenant()
    person = make_person(tenant.client)
    _ask(idp, tenant.client.slug, person.email)
    _ask(idp, tenant.client.slug, person.email)
    older, newer = inbox(person.email)
    assert use_link(Browser(idp), older).status_code == 410
    assert use_link(Browser(idp), newer).status_code == 303

    monkeypatch.setitem(
        idp_app.config, "LINK_SECONDS", {**idp_app.config["LINK_SECONDS"], "access": 1}
    )
    _ask(idp, tenant.client.slug, person.email)
    expiring = inbox(person.email)[-1]
    time.sleep(1.2)
    assert use_link(Browser(idp), expiring).status_code == 410


def test_link_works_only_at_its_school(idp, make_tenant, make_person, link_account, inbox) -> None:
    first, second = make_tenant(), make_tenant()
    person = make_person(first.client)
    link_account(person, second.client, ["parent"])
    _ask(idp, first.client.slug, person.email)
    [message] = inbox(person.email)
    page, token = link_of(message)
    foreign = post_form(Browser(idp), f"{idp}/s/{second.client.slug}/signin", {"token": token})
    assert foreign.status_code == 410
    # Refused elsewhere, it still works where it belongs.
    assert post_form(Browser(idp), page, {"token": token}).status_code == 303


def test_link_failures_counted_exactly_per_school(
    idp, idp_app, make_tenant, make_person, inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 6
    monkeypatch.setitem(idp_app.config, "LOGIN_MAX_FAILURES_PER_ADDRESS", limit)
    tenant, other = make_tenant(), make_tenant()
    person = make_person(tenant.client)
    elsewhere = make_person(other.client)

    def bad(_: int) -> int:
        return post_form(
            Browser(idp), f"{idp}/s/{tenant.client.slug}/signin", {"token": "x" * 43}
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(bad, range(limit - 1))) == {410}
    # limit - 1 failures counted, in parallel: a good link is the limit-th use, and works
    # (and is refunded).
    _ask(idp, tenant.client.slug, person.email)
    assert use_link(Browser(idp), inbox(person.email)[-1]).status_code == 303
    assert bad(0) == 410  # the limit-th failure
    _ask(idp, tenant.client.slug, person.email)
    locked = use_link(Browser(idp), inbox(person.email)[-1])
    assert locked.status_code == 410  # over the limit even a good link is refused
    # Another school's counters are its own.
    _ask(idp, other.client.slug, elsewhere.email)
    assert use_link(Browser(idp), inbox(elsewhere.email)[-1]).status_code == 303


def test_link_requests_capped_exactly_per_school(
    idp, idp_app, make_tenant, make_person, link_account, inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(idp_app.config, "LINK_MAX_REQUESTS", 3)
    tenant, other = make_tenant(), make_tenant()
    person = make_person(tenant.client)
    link_account(person, other.client, ["parent"])
    with ThreadPoolExecutor(8) as pool:
        answers = set(pool.map(lambda _: _ask(idp, tenant.client.slug, person.email)[:2], range(8)))
    assert len(answers) == 1  # capped or not, the same answer
    assert len(inbox(person.email)) == 3  # exactly the cap, though asked in parallel
    # The other school's cap is its own.
    _ask(idp, other.client.slug, person.email)
    assert len(inbox(person.email)) == 4


def test_mail_waits_in_the_outbox_while_the_server_is_away(
    idp, idp_app, make_tenant, make_person, mail_catcher, inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select, update

    from idp.dispatch import mail as mailer
    from idp.models import MailOutbox
    from shared.db import get_db
    from tests.support import free_port

    tenant = make_tenant()
    person = make_person(tenant.client)
    monkeypatch.setitem(idp_app.config, "SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    _ask(idp, tenant.client.slug, person.email)
    with idp_app.app_context():
        mailer.run_once(idp_app)
        db = get_db()
        row = db.scalars(select(MailOutbox).order_by(MailOutbox.id.desc())).first()
        assert row is not None, "the link's mail waits in the outbox"
        assert (row.state, row.attempts, row.recipient) == ("pending", 1, person.email)
        assert row.next_attempt_at > row.created_at  # backed off
        db.execute(
            update(MailOutbox).where(MailOutbox.id == row.id).values(next_attempt_at=row.created_at)
        )
        db.commit()
    monkeypatch.setitem(idp_app.config, "SMTP_URL", mail_catcher.smtp_url)
    [message] = inbox(person.email)  # the retry mints a fresh link, and it works
    assert use_link(Browser(idp), message).status_code == 303


def test_an_address_that_could_add_recipients_is_refused(
    idp, make_tenant, make_person, inbox
) -> None:
    tenant = make_tenant()
    person = make_person(tenant.client)
    for typed in (
        f"{person.email}\r\nBcc: x@example.ee",
        f"{person.email}, x@example.ee",
        "ilma-at-märgita",
    ):
        status, body, _ = _ask(idp, tenant.client.slug, typed)
        assert status == 400 and "Kirjuta oma e-posti aadress" in body
    assert inbox(person.email) == [] and inbox("x@example.ee") == []


def test_the_worker_round_sends_the_mail(
    idp, idp_app, make_tenant, make_person, mail_catcher, inbox
) -> None:
    import requests

    from idp.worker import Expiry, run_round

    tenant = make_tenant()
    person = make_person(tenant.client)
    inbox(person.email)  # nothing else is waiting
    _ask(idp, tenant.client.slug, person.email)
    assert run_round(idp_app, Expiry()).mails == 1
    caught = requests.get(f"{mail_catcher.url}/api/messages", timeout=10).json()["messages"]
    assert [m["to"] for m in caught if person.email in m["to"]] == [[person.email]]
    page = requests.get(mail_catcher.url, timeout=10)  # the catcher's page, links clickable
    assert f'<a href="{idp}/s/{tenant.client.slug}/signin?ui_locales=et#' in page.text
