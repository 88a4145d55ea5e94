"""Data sync: a change to a person reaches every school where they have an account, as a signed
Security Event Token (RFC 8417) pushed per RFC 8935; schools apply only newer versions, so events
out of order or twice change nothing wrong, and a school that was down gets it when it is back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from tests.flows.sync_support import (
    add_member,
    api,
    client_token,
    copy_of,
    eventually,
    person_id,
)
from tests.support import LiveServer, Tenant, unverified_claims

SET_TYPE = "application/secevent+jwt"
EVENT = "https://stuudium.ee/events/person-changed"


@pytest.fixture
def linked(make_tenant, make_person, link_account, school_app) -> dict[str, Any]:
    """A parent with accounts at three schools (one person), a local copy at each, and an admin
    of the first school."""
    schools = [
        make_tenant(name) for name in ("Laagri Kool", "Laagri Huvialakool", "Laagri Lasteaed")
    ]
    parent = make_person(schools[0].client, "Jüri", "Mägi")
    admin = make_person(schools[0].client, "Kaja", "Kask", ("admin",))
    subs = [parent.sub] + [link_account(parent, s.client, ["parent"]) for s in schools[1:]]
    for school, sub in zip(schools, subs, strict=True):
        add_member(school_app, school, parent, ["parent"], sub)
    return {"schools": schools, "parent": parent, "admin": admin, "subs": subs}


def _all_have(school_app: Any, linked: dict[str, Any], **expected: Any) -> bool:
    copies = [
        copy_of(school_app, s, sub)
        for s, sub in zip(linked["schools"], linked["subs"], strict=True)
    ]
    return all(all(c[k] == v for k, v in expected.items()) for c in copies)


@dataclass
class _Row:
    sub: str
    state: str
    attempts: int
    last_status: int | None


def _deliveries(idp_app: Any, version: int) -> list[_Row]:
    """The event rows queued for one version."""
    from idp.models import Delivery
    from shared.db import get_db

    with idp_app.app_context():
        rows = get_db().scalars(select(Delivery).where(Delivery.kind == "event")).all()
        return [
            _Row(r.payload["sub"], r.state, r.attempts, r.last_status)
            for r in rows
            if r.payload.get("version") == version
        ]


def test_a_phone_change_at_one_school_reaches_every_linked_school(idp, idp_app, school_app, linked):
    token = client_token(idp, linked["schools"][0].client)
    parent, admin = linked["parent"], linked["admin"]
    current = api(idp, token, "GET", f"/accounts/{parent.sub}", acting=admin.sub).json()
    resp = api(
        idp,
        token,
        "PATCH",
        f"/accounts/{parent.sub}/person",
        acting=admin.sub,
        body={"phone_number": "+372 5123 4567"},
        if_match=current["version"],
    )
    assert resp.status_code == 200, resp.text
    version = resp.json()["version"]
    assert version > current["version"] and resp.headers["ETag"] == f'"{version}"'
    assert eventually(
        lambda: _all_have(
            school_app, linked, phone="+372 5123 4567", version=version, family_name="Mägi"
        )
    )
    # One event per school, each for that school's own sub, all delivered with 202 (a school
    # applies the change before its 202 reaches the IdP, so the rows may still be settling).
    rows = _deliveries(idp_app, version)
    assert sorted(r.sub for r in rows) == sorted(linked["subs"])
    assert eventually(
        lambda: (
            {(r.state, r.last_status) for r in _deliveries(idp_app, version)}
            == {("delivered", 202)}
        )
    )


def test_an_email_change_by_the_person_reaches_every_linked_school(idp_app, school_app, linked):
    from idp.models import Person
    from idp.people.sync import record_person_change
    from shared.db import get_db

    pid = person_id(idp_app, linked["parent"].sub)
    with idp_app.app_context():  # what the person's own profile edit at the IdP does
        db = get_db()
        db.execute(update(Person).where(Person.id == pid).values(email="juri@laagri.ee"))
        version = record_person_change(db, pid, ["email"], "profile", linked["parent"].sub)
        db.commit()
    assert eventually(
        lambda: _all_have(school_app, linked, email="juri@laagri.ee", version=version)
    )


def _mint(
    idp_app: Any,
    school: Tenant,
    sub: str,
    version: int,
    family_name: str,
    client_id: str | None = None,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A person-changed event signed with the IdP's own active key, as the IdP sends them;
    claims and header, when given, change it before it is signed."""
    from joserfc import jwt

    from idp.oidc import tokens
    from shared.db import get_db
    from tests.flows.test_resource_errors import _segments

    data = {
        "given_name": "Jüri",
        "family_name": family_name,
        "email": "j@example.ee",
        "phone_number": None,
        "birthdate": "1980-02-29",
    }
    with idp_app.app_context():
        ring = idp_app.extensions["keys"].ring(get_db())
        token = tokens.security_event_token(
            ring,
            idp_app.config["ISSUER"],
            client_id=client_id or school.client.client_id,
            sub=sub,
            events={EVENT: {"version": version, "changed": ["family_name"], "claims": data}},
        )
        if not claims and not header:
            return token
        old_header, old_claims = _segments(token)
        return jwt.encode(
            {**old_header, **(header or {})},
            {**old_claims, **(claims or {})},
            ring.signing["ES256"],
        )


def _push(school: Tenant, token: str, content_type: str = SET_TYPE) -> requests.Response:
    return requests.post(
        f"{school.url}/auth/events", data=token, timeout=10, headers={"Content-Type": content_type}
    )


def test_events_out_of_order_and_twice_leave_the_newest(idp_app, school_app, linked):
    school, sub = linked["schools"][1], linked["subs"][1]
    newer = _mint(idp_app, school, sub, 10_000_002, "Mäeots")
    older = _mint(idp_app, school, sub, 10_000_001, "Mägi-Vana")
    assert _push(school, newer).status_code == 202
    assert copy_of(school_app, school, sub)["family_name"] == "Mäeots"
    assert _push(school, older).status_code == 202  # accepted, nothing changes
    again = _mint(idp_app, school, sub, 10_000_002, "Ei tohi")  # same version, sent again
    assert _push(school, again).status_code == 202
    copy = copy_of(school_app, school, sub)
    assert (copy["family_name"], copy["version"]) == ("Mäeots", 10_000_002)
    assert str(copy["birth_date"]) == "1980-02-29" and copy["email"] == "j@example.ee"
    # The very same token a second time is a replay: refused, nothing changes.
    replay = _push(school, newer)
    assert replay.status_code == 400 and replay.json()["err"] == "invalid_request"
    # Another school's copy of the person is untouched by events sent to this school.
    assert copy_of(school_app, linked["schools"][2], linked["subs"][2])["version"] == 0


def test_invalid_events_are_refused_with_400(idp, idp_app, school_app, linked):
    import time

    school, sub = linked["schools"][1], linked["subs"][1]
    other = linked["schools"][2]
    cases = {
        "another school's audience": _mint(
            idp_app, school, sub, 10_000_005, "X", client_id=other.client.client_id
        ),
        "a logout token's type": _mint(
            idp_app, school, sub, 10_000_006, "X", header={"typ": "logout+jwt"}
        ),
        "issued long ago": _mint(
            idp_app, school, sub, 10_000_007, "X", claims={"iat": int(time.time()) - 3600}
        ),
        "issued in the future": _mint(
            idp_app, school, sub, 10_000_008, "X", claims={"iat": int(time.time()) + 3600}
        ),
        "another issuer": _mint(
            idp_app, school, sub, 10_000_009, "X", claims={"iss": "http://127.0.0.1:9"}
        ),
        "no event": _mint(idp_app, school, sub, 10_000_010, "X", claims={"events": {}}),
        "a forged signature": _mint(idp_app, school, sub, 10_000_011, "X")[:-8] + "AAAAAAAA",
    }
    for name, token in cases.items():
        resp = _push(school, token)
        assert resp.status_code == 400, name
        assert resp.json()["err"] in ("invalid_request", "invalid_key", "invalid_audience"), name
    wrong_type = _push(
        school, _mint(idp_app, school, sub, 10_000_012, "X"), content_type="application/jwt"
    )
    assert wrong_type.status_code == 400
    assert copy_of(school_app, school, sub)["family_name"] == "Mägi"
    # An account the school does not know: accepted, nothing to apply.
    assert _push(school, _mint(idp_app, school, "nobody-here", 10_000_013, "X")).status_code == 202


def test_a_school_that_was_down_gets_the_change_when_it_is_back(
    idp, idp_app, school_app, linked, monkeypatch, cli
):
    from idp.dispatch.deliveries import run_once

    monkeypatch.setitem(idp_app.config, "DELIVERY_BACKOFF_SECONDS", 0)
    down = linked["schools"][2]
    assert down.server is not None
    down.server.stop()
    token = client_token(idp, linked["schools"][0].client)
    parent, admin = linked["parent"], linked["admin"]
    current = api(idp, token, "GET", f"/accounts/{parent.sub}", acting=admin.sub).json()
    resp = api(
        idp,
        token,
        "PATCH",
        f"/accounts/{parent.sub}/person",
        acting=admin.sub,
        body={"family_name": "Mäeots"},
        if_match=current["version"],
    )
    assert resp.status_code == 200, resp.text
    version = resp.json()["version"]
    up = linked["schools"][:2], linked["subs"][:2]
    assert eventually(
        lambda: all(
            copy_of(school_app, s, sub)["family_name"] == "Mäeots"
            for s, sub in zip(*up, strict=True)
        )
    )

    def failed_once() -> bool:
        rows = [r for r in _deliveries(idp_app, version) if r.sub == linked["subs"][2]]
        return len(rows) == 1 and rows[0].attempts >= 1 and rows[0].state == "pending"

    assert eventually(failed_once)
    assert copy_of(school_app, down, linked["subs"][2])["family_name"] == "Mägi"
    listed = json.loads(cli("deliveries", "list", "--json").output)
    waiting = [d for d in listed if d["school"] == down.client.slug]
    assert [(d["kind"], d["state"], d["last_error"]) for d in waiting] == [
        ("event", "pending", "ConnectionError")
    ]

    port = int(down.url.rsplit(":", 1)[1])
    back = LiveServer(school_app, port).start()
    try:
        with idp_app.app_context():
            run_once(idp_app)
        copy = copy_of(school_app, down, linked["subs"][2])
        assert (copy["family_name"], copy["version"]) == ("Mäeots", version)
        assert {r.state for r in _deliveries(idp_app, version)} == {"delivered"}
    finally:
        back.stop()


def test_an_event_is_minted_from_the_newest_data_when_it_is_sent(idp, idp_app, linked):
    """Each attempt carries the person's current data and version (a late event is never
    stale), in a SET for that school's client and sub; nothing of a rolled back change goes."""
    from idp.models import Client, Person
    from idp.people.sync import record_person_change
    from shared.db import get_db
    from tests.support import Receiver

    receiver = Receiver(status=202)
    school = linked["schools"][1]
    pid = person_id(idp_app, linked["parent"].sub)
    try:
        with idp_app.app_context():
            db = get_db()
            db.execute(
                update(Client)
                .where(Client.client_id == school.client.client_id)
                .values(events_uri=f"{receiver.url}/events")
            )
            db.commit()
            record_person_change(db, pid, ["phone_number"], "profile", None)
            db.rollback()
            db.execute(update(Person).where(Person.id == pid).values(phone="+372 555 1111"))
            first = record_person_change(db, pid, ["phone_number"], "profile", None)
            db.execute(update(Person).where(Person.id == pid).values(phone="+372 555 2222"))
            second = record_person_change(db, pid, ["phone_number"], "profile", None)
            db.commit()
        assert second > first
        assert eventually(lambda: len(receiver.bodies) >= 2)
        assert len(receiver.bodies) == 2 and receiver.content_types == [SET_TYPE, SET_TYPE]
        for token in receiver.bodies:
            claims = unverified_claims(token)
            event = claims["events"][EVENT]
            assert (event["version"], event["claims"]["phone_number"]) == (second, "+372 555 2222")
            assert event["changed"] == ["phone_number"]
            assert claims["aud"] == school.client.client_id and claims["iss"] == idp
            assert claims["sub_id"] == {"format": "iss_sub", "iss": idp, "sub": linked["subs"][1]}
            assert "isikukood" not in str(claims)
    finally:
        receiver.close()
