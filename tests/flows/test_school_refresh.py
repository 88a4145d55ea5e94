"""The single-logout safety net: a school's local session lives only as long as its IdP tokens."""

from __future__ import annotations

import json

import pytest

from tests.flows.test_school_sso import _sign_in


@pytest.fixture
def refresh_every_request(school_app):
    """Make every request count as 'access token about to expire'."""
    before = school_app.config["REFRESH_MARGIN_SECONDS"]
    school_app.config["REFRESH_MARGIN_SECONDS"] = 10_000
    yield
    school_app.config["REFRESH_MARGIN_SECONDS"] = before


def _local_sessions(school_app, tenant_url):
    r = school_app.extensions["redis"]
    return [json.loads(r.get(k)) for k in r.scan_iter("si:sess:*") if r.get(k)]


def test_the_school_refreshes_before_the_access_token_expires(
    browser, make_tenant, make_person, school_app, refresh_every_request
):
    school = make_tenant()
    person = make_person(school.client, given_name="Mari", family_name="Tamm")
    _sign_in(browser, school.url, person)
    mine = [s for s in _local_sessions(school_app, school.url) if s["sub"] == person.sub]
    assert len(mine) == 1
    first_access, first_refresh = mine[0]["access_token"], mine[0]["refresh_token"]
    page = browser.http.get(school.url + "/", timeout=10)
    assert "Mari Tamm" in page.text
    mine = [s for s in _local_sessions(school_app, school.url) if s["sub"] == person.sub]
    assert mine[0]["access_token"] != first_access
    assert mine[0]["refresh_token"] != first_refresh


def test_a_lost_logout_message_ends_the_school_session_at_the_next_refresh(
    browser, make_tenant, make_person, school_app, idp_app, refresh_every_request
):
    from idp.sso.logout import Scope, end_sessions
    from shared.db import get_db

    school = make_tenant()
    person = make_person(school.client, given_name="Mari", family_name="Tamm")
    _sign_in(browser, school.url, person)
    sid = next(s["sid"] for s in _local_sessions(school_app, school.url) if s["sub"] == person.sub)
    with idp_app.test_request_context():
        # The IdP session ends but the back-channel message is never sent (as if it got lost).
        end_sessions(get_db(), Scope(session_ids=(sid,)), "logout", deliver=False)
    page = browser.http.get(school.url + "/", timeout=10)
    assert "Mari Tamm" not in page.text
    assert 'id="login"' in page.text
    assert not [s for s in _local_sessions(school_app, school.url) if s["sub"] == person.sub]
