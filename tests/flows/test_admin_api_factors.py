"""Login factors through the tenant admin API (ARCHITECTURE "Who may change what"): a teacher
changes the login e-mail of parents and students only, an admin anyone's but their own (a person
changes their own factors themselves), names and phone stay correctable by teachers, and the old
address is told that the school changed it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.flows.sync_support import api, client_token
from tests.support import PersonLogin, Tenant


@dataclass
class Staffroom:
    """A school, its admin API token at the IdP, and its people by role."""

    idp: str
    school: Tenant
    token: str
    kaja: PersonLogin  # admin and staff
    anne: PersonLogin  # admin
    tiina: PersonLogin  # teacher
    sirje: PersonLogin  # staff (the secretary)
    juri: PersonLogin  # parent
    mia: PersonLogin  # student

    def read(self, actor: PersonLogin, target: PersonLogin) -> dict[str, Any]:
        """The target's account as the actor reads it."""
        resp = api(self.idp, self.token, "GET", f"/accounts/{target.sub}", acting=actor.sub)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def correct(self, actor: PersonLogin, target: PersonLogin, **fields: str) -> requests.Response:
        """Correct the target's data as the actor, at the version just read."""
        version = self.read(actor, target)["version"]
        return api(
            self.idp,
            self.token,
            "PATCH",
            f"/accounts/{target.sub}/person",
            acting=actor.sub,
            body=fields,
            if_match=version,
        )


@pytest.fixture
def staffroom(idp, make_tenant, make_person) -> Staffroom:
    school = make_tenant("Laagri Kool")

    def person(given: str, family: str, *roles: str) -> PersonLogin:
        return make_person(school.client, given, family, roles)

    return Staffroom(
        idp,
        school,
        client_token(idp, school.client),
        kaja=person("Kaja", "Kask", "admin", "staff"),
        anne=person("Anne", "Aas", "admin"),
        tiina=person("Tiina", "Õunapuu", "teacher"),
        sirje=person("Sirje", "Sõrm", "staff"),
        juri=person("Jüri", "Mägi", "parent"),
        mia=person("Mia", "Mägi", "student"),
    )


def _refused(resp: requests.Response) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "forbidden" and resp.json()["error_description"]


def test_a_teacher_changes_no_one_elses_login_email_who_works_at_the_school(
    staffroom: Staffroom, inbox
) -> None:
    room = staffroom
    for target in (room.kaja, room.anne, room.sirje, room.tiina):  # the last: her own
        before = room.read(room.kaja, target)
        assert room.read(room.tiina, target)["login_factors_editable"] is False
        _refused(room.correct(room.tiina, target, email="tiina-valis@example.ee"))
        after = room.read(room.kaja, target)
        assert (after["email"], after["version"]) == (before["email"], before["version"])
        assert inbox(target.email) == []  # nothing changed, no one told
    assert inbox("tiina-valis@example.ee") == []
    # Names and phone a teacher still corrects, the admin's included.
    assert room.correct(room.tiina, room.kaja, phone_number="+372 5555 0202").status_code == 200


def test_a_teacher_changes_a_parents_and_a_students_login_email(
    staffroom: Staffroom, inbox
) -> None:
    room = staffroom
    for target in (room.juri, room.mia):
        assert room.read(room.tiina, target)["login_factors_editable"] is True
        new = "uus-" + target.email
        done = room.correct(room.tiina, target, email=new)
        assert done.status_code == 200 and done.json()["account"]["email"] == new, done.text
        [notice] = inbox(target.email)
        assert new in notice["body"] and target.email in notice["body"]


def test_an_admins_login_email_is_changed_only_by_another_admin(
    staffroom: Staffroom, inbox
) -> None:
    room = staffroom
    assert room.read(room.kaja, room.kaja)["login_factors_editable"] is False
    _refused(room.correct(room.kaja, room.kaja, email="kaja.uus@example.ee"))
    assert room.read(room.anne, room.kaja)["email"] == room.kaja.email
    for actor, target in (
        (room.anne, room.kaja),
        (room.kaja, room.anne),
        (room.kaja, room.tiina),
        (room.anne, room.sirje),
    ):
        assert room.read(actor, target)["login_factors_editable"] is True
        new = "kool-" + target.email
        done = room.correct(actor, target, email=new)
        assert done.status_code == 200 and done.json()["account"]["email"] == new, done.text


def test_the_old_address_is_told_the_school_changed_it(staffroom: Staffroom, inbox) -> None:
    room = staffroom
    new = "jyri.magi@example.ee"
    assert room.correct(room.kaja, room.juri, email=new).status_code == 200
    [notice] = inbox(room.juri.email)
    assert notice["subject"] == "Sinu Stuudium ID e-posti aadress muudeti"
    body = notice["body"]
    assert new in body and room.juri.email in body and "Tere, Jüri!" in body
    assert "Aadressi muutis kool Laagri Kool." in body
    assert inbox(new) == []  # the new address is the school's word: it gets no notice
    # A change of letter case only is no change of address: no one is told.
    assert room.correct(room.kaja, room.juri, email=new.upper()).status_code == 200
    assert len(inbox(room.juri.email)) == 1
