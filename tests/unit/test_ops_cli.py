"""The ops commands: schools list / update / disable, delivery statistics, audit export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import Result

from tests.flows.test_backchannel import _school_at
from tests.support import Browser, Receiver, authorize_url, pkce_pair, refresh, sign_in

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def receiver():
    r = Receiver(status=503)  # a school that is down: its logout stays pending
    yield r
    r.close()


def test_list_update_branding_and_address(idp, idp_app, cli, make_school, tmp_path: Path):
    school = make_school()
    listed = {s["slug"]: s for s in ok_json(cli("schools", "list", "--json"))}
    assert listed[school.slug]["status"] == "active" and not listed[school.slug]["logo"]
    assert school.slug in cli("schools", "list").output

    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    new_url = f"http://127.0.0.1:9/uus-{school.slug}"
    changed = ok_json(
        cli(
            "schools",
            "update",
            school.slug,
            "--name",
            "Uus Kool",
            "--logo",
            str(logo),
            "--url",
            new_url,
            "--json",
        )
    )
    assert changed["changed"] == ["name", "logo", "url"] and changed["logo"]
    assert changed["name"] == "Uus Kool" and changed["url"] == new_url

    # The login page shows the new name and logo; the client's redirect URI moved along.
    moved = school.__class__(**{**school.__dict__, "redirect_uri": f"{new_url}/auth/callback"})
    _, challenge = pkce_pair()
    page = Browser(idp).follow(authorize_url(idp, moved, challenge), moved.redirect_uri)
    assert page.status_code == 200 and "Uus Kool" in page.text
    assert f'src="/schools/{school.slug}/logo"' in page.text
    served = requests.get(f"{idp}/schools/{school.slug}/logo", timeout=10)
    assert served.headers["Content-Type"] == "image/png" and served.content == PNG
    _, challenge = pkce_pair()
    old = requests.get(authorize_url(idp, school, challenge), allow_redirects=False, timeout=10)
    assert old.status_code == 400  # the old address is no longer registered

    assert "nothing changed" in cli("schools", "update", school.slug, "--name", "Uus Kool").output
    assert cli("schools", "update", "no-such-school", "--name", "X").exit_code != 0


def test_disable_ends_sessions_through_single_logout(
    idp, idp_app, cli, make_person, receiver, monkeypatch
):
    monkeypatch.setitem(idp_app.config, "CLIENT_CACHE_SECONDS", 0)
    monkeypatch.setenv("IDP_CLIENT_CACHE_SECONDS", "0")
    school = _school_at(idp_app, receiver.url)
    person = make_person(school)
    browser = Browser(idp)
    tokens = sign_in(idp, browser, school, person, scope="openid offline_access")

    done = ok_json(cli("schools", "disable", school.slug, "--json"))
    assert done == {
        "school": school.slug,
        "status": "disabled",
        "sessions_ended": 1,
        "logouts_queued": 1,
    }
    assert len(receiver.posts) == 1 and receiver.posts[0]["logout_token"]
    assert refresh(idp, school, tokens["refresh_token"]).json()["error"] in (
        "invalid_grant",
        "invalid_client",
    )
    _, challenge = pkce_pair()
    page = browser.http.get(authorize_url(idp, school, challenge), timeout=10)
    assert page.status_code == 400 and "Tundmatu rakendus" in page.text

    stats = ok_json(cli("deliveries", "stats", "--school", school.slug, "--json"))
    assert stats["by_state"] == {"logout": {"pending": 1}}
    assert stats["schools_waiting"] == [{"school": school.slug, "undelivered": 1}]
    assert stats["oldest_pending_seconds"]["logout"] >= 0
    everywhere = ok_json(cli("deliveries", "stats", "--json"))
    assert everywhere["by_state"]["logout"]["pending"] >= 1
    assert "oldest pending logout" in cli("deliveries", "stats").output
    assert [
        s["status"] for s in ok_json(cli("schools", "list", "--json")) if s["slug"] == school.slug
    ] == ["disabled"]


def test_audit_export_by_date_range(idp, cli, make_school):
    school = make_school()
    assert cli("schools", "update", school.slug, "--name", "Auditi Kool").exit_code == 0
    today = dt.datetime.now(dt.UTC).date()
    rows = ok_json(cli("audit", "export", "--from", str(today), "--to", str(today), "--json"))
    mine = [r for r in rows if r["school"] == school.slug]
    assert [(r["action"], r["actor"], r["details"]) for r in mine] == [
        ("school.update", "ops", {"changed": ["name"]})
    ]

    table = list(
        csv.DictReader(
            io.StringIO(
                cli("audit", "export", "--from", str(today), "--to", str(today), "--csv").output
            )
        )
    )
    assert any(r["school"] == school.slug and r["action"] == "school.update" for r in table)
    lines = cli("audit", "export", "--from", str(today), "--to", str(today)).output
    assert len([json.loads(line) for line in lines.splitlines()]) == len(rows)

    yesterday = today - dt.timedelta(days=1)
    earlier = ok_json(
        cli("audit", "export", "--from", str(yesterday), "--to", str(yesterday), "--json")
    )
    assert all(r["school"] != school.slug for r in earlier)
    assert cli("audit", "export", "--from", str(today), "--to", str(yesterday)).exit_code != 0
