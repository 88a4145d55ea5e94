"""The e-diary over real HTTP: parents follow their children, teachers keep the lessons,
admins keep the classes, and no school sees another school's rows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from tests.support import CSRF_RE, Browser, PersonLogin, Tenant


def _valid_isikukood(first_ten: str) -> str:
    from stdnum.ee import ik

    return first_ten + ik.calc_check_digit(first_ten + "0")


def _sign_in(browser: Browser, school_url: str, person: PersonLogin) -> None:
    page = browser.follow(f"{school_url}/auth/login", stop_prefix="\x00")
    assert page.status_code == 200 and 'name="password"' in page.text
    final = browser.submit_login(page, person.email, person.password, stop_prefix="\x00")
    assert final.status_code == 200, final.text
    assert final.url.startswith(school_url)


def _get(browser: Browser, url: str) -> Any:
    return browser.http.get(url, allow_redirects=False, timeout=10)


def _post(browser: Browser, url: str, data: dict[str, str], page: str | None = None) -> Any:
    """Submit a form the way a browser would: with the CSRF token of the page it is on."""
    html = page if page is not None else _get(browser, url).text
    found = CSRF_RE.search(html)
    assert found, "a form with a CSRF token expected"
    return browser.http.post(
        url, data={"csrf_token": found.group(1), **data}, allow_redirects=False, timeout=10
    )


def _follow(browser: Browser, resp: Any, base: str) -> Any:
    assert resp.status_code == 303, resp.text
    location = resp.headers["Location"]
    return _get(browser, location if location.startswith("http") else base + location)


def _option(html: str, label: str) -> str:
    found = re.search(r'<option value="(\d+)"[^>]*>' + re.escape(label), html)
    assert found, f"option {label!r} expected"
    return found.group(1)


@contextmanager
def _diary(school_app: Any, school: Tenant) -> Iterator[tuple[Any, int]]:
    """Write the school's diary rows directly (as data imported before the test)."""
    from school_instance.models import Tenant as TenantRow
    from shared.db import get_db

    with school_app.app_context():
        db = get_db()
        tenant = db.scalar(select(TenantRow).where(TenantRow.slug == school.client.slug))
        assert tenant is not None, f"no school {school.client.slug}"
        yield db, tenant.id
        db.commit()


def _member(
    db: Any, tenant_id: int, person: PersonLogin, roles: list[str], sub: str | None = None
) -> int:
    from school_instance.models import Member

    row = Member(
        tenant_id=tenant_id,
        sub=sub or person.sub,
        given_name=person.given_name,
        family_name=person.family_name,
        roles=roles,
    )
    db.add(row)
    db.flush()
    return row.id


@dataclass
class Laagri:
    """A school with two classes, two teachers, two parents and an admin."""

    school: Tenant
    tiina: PersonLogin  # teacher of 3.a
    peeter: PersonLogin  # teacher of 4.b
    juri: PersonLogin  # parent of Mia (3.a)
    kadri: PersonLogin  # parent of Oskar (3.a)
    kaja: PersonLogin  # admin
    ids: dict[str, int]


@pytest.fixture
def laagri(make_tenant, make_person, school_app) -> Laagri:
    from school_instance.models import (
        Announcement,
        Attendance,
        Guardian,
        Lesson,
        SchoolClass,
        Student,
    )

    school = make_tenant("Laagri Kool")
    people = {
        "tiina": make_person(school.client, "Tiina", "Õunapuu", roles=("teacher",)),
        "peeter": make_person(school.client, "Peeter", "Kuusk", roles=("teacher",)),
        "juri": make_person(school.client, "Jüri", "Mägi", roles=("parent",)),
        "kadri": make_person(school.client, "Kadri", "Tamm", roles=("parent",)),
        "kaja": make_person(school.client, "Kaja", "Kask", roles=("admin", "staff")),
    }
    ids: dict[str, int] = {}
    with _diary(school_app, school) as (db, tid):
        roles = {
            "tiina": ["teacher"],
            "peeter": ["teacher"],
            "juri": ["parent"],
            "kadri": ["parent"],
            "kaja": ["admin", "staff"],
        }
        members = {k: _member(db, tid, p, roles[k]) for k, p in people.items()}
        classes = {
            "3a": SchoolClass(tenant_id=tid, name="3.a", teacher_id=members["tiina"]),
            "4b": SchoolClass(tenant_id=tid, name="4.b", teacher_id=members["peeter"]),
        }
        db.add_all(classes.values())
        db.flush()
        kids = {
            "mia": Student(
                tenant_id=tid, class_id=classes["3a"].id, given_name="Mia", family_name="Mägi"
            ),
            "oskar": Student(
                tenant_id=tid, class_id=classes["3a"].id, given_name="Oskar", family_name="Tamm"
            ),
            "sofia": Student(
                tenant_id=tid, class_id=classes["4b"].id, given_name="Sofia", family_name="Saar"
            ),
        }
        db.add_all(kids.values())
        db.flush()
        db.add_all(
            [
                Guardian(tenant_id=tid, student_id=kids["mia"].id, member_id=members["juri"]),
                Guardian(tenant_id=tid, student_id=kids["oskar"].id, member_id=members["kadri"]),
            ]
        )
        day = dt.date.today() - dt.timedelta(days=3)
        lessons = {
            "math": Lesson(
                tenant_id=tid,
                class_id=classes["3a"].id,
                teacher_id=members["tiina"],
                subject="Matemaatika",
                held_on=day,
                topic="Murdude liitmine",
            ),
            "eesti": Lesson(
                tenant_id=tid,
                class_id=classes["3a"].id,
                teacher_id=members["tiina"],
                subject="Eesti keel",
                held_on=day + dt.timedelta(days=1),
                topic="Eesti rahvaluule",
            ),
            "loodus": Lesson(
                tenant_id=tid,
                class_id=classes["4b"].id,
                teacher_id=members["peeter"],
                subject="Loodusõpetus",
                held_on=day,
                topic="Veeringe looduses",
            ),
        }
        db.add_all(lessons.values())
        db.flush()
        marks = [
            ("math", "mia", "present"),
            ("math", "oskar", "absent"),
            ("eesti", "mia", "late"),
            ("eesti", "oskar", "present"),
            ("loodus", "sofia", "absent"),
        ]
        db.add_all(
            [
                Attendance(
                    tenant_id=tid,
                    lesson_id=lessons[lesson].id,
                    student_id=kids[kid].id,
                    status=status,
                )
                for lesson, kid, status in marks
            ]
        )
        # Tiina's word to her class only (its people see it, 4.b's do not).
        news_3a = Announcement(
            tenant_id=tid,
            author_id=members["tiina"],
            class_id=classes["3a"].id,
            title="Matemaatika",
            body="Murdude liitmine",
        )
        db.add(news_3a)
        db.flush()
        ids["news_3a"] = news_3a.id
        ids.update({f"class_{k}": c.id for k, c in classes.items()})
        ids.update({k: s.id for k, s in kids.items()})
        ids.update({f"lesson_{k}": le.id for k, le in lessons.items()})
        ids.update({f"member_{k}": m for k, m in members.items()})
    return Laagri(school, ids=ids, **people)


def test_parent_sees_only_their_childs_lessons_and_attendance(browser, laagri):
    url = laagri.school.url
    _sign_in(browser, url, laagri.juri)
    home = _get(browser, url + "/")
    assert "Sinu lapsed" in home.text and "Mia Mägi" in home.text and "3.a" in home.text
    assert "Murdude liitmine" in home.text and "Eesti rahvaluule" in home.text
    assert "hilines" in home.text and "kohal" in home.text
    assert "Oskar Tamm" not in home.text and "puudus" not in home.text  # Oskar was absent
    assert "Veeringe looduses" not in home.text and "Sofia" not in home.text
    assert "Sinu klassid" not in home.text  # no teacher section for a parent

    child = _get(browser, f"{url}/children/{laagri.ids['mia']}")
    assert child.status_code == 200
    assert "Mia Mägi" in child.text and "Tiina Õunapuu" in child.text
    assert "Puudumisi: 0" in child.text and "Hilinemisi: 1" in child.text

    for other in ("oskar", "sofia"):
        page = _get(browser, f"{url}/children/{laagri.ids[other]}")
        assert page.status_code == 404
        assert "Oskar" not in page.text and "Sofia" not in page.text


def test_teacher_marks_attendance_and_writes_the_topic_parent_then_sees_it(browser, laagri, idp):
    url = laagri.school.url
    _sign_in(browser, url, laagri.tiina)
    home = _get(browser, url + "/")
    assert "Sinu klassid" in home.text and "3.a" in home.text and "Uus tund" in home.text
    assert "Murdude liitmine" in home.text and "Veeringe looduses" not in home.text

    form = _get(browser, f"{url}/lessons/new?class={laagri.ids['class_3a']}")
    assert form.status_code == 200 and "4.b" not in form.text  # only the classes she teaches
    bad = _post(
        browser,
        f"{url}/lessons/new",
        {"class_id": str(laagri.ids["class_3a"]), "subject": "", "held_on": "31.02.2026"},
        form.text,
    )
    assert bad.status_code == 400
    assert "Kirjuta õppeaine" in bad.text and "Kuupäev ei ole korrektne" in bad.text
    assert 'value="31.02.2026"' in bad.text  # what was typed stays

    created = _post(
        browser,
        f"{url}/lessons/new",
        {
            "class_id": str(laagri.ids["class_3a"]),
            "subject": "Loodusõpetus",
            "held_on": dt.date.today().isoformat(),
        },
        bad.text,
    )
    lesson_page = _follow(browser, created, url)
    assert lesson_page.status_code == 200
    assert "Tund on lisatud" in lesson_page.text
    assert "Mia Mägi" in lesson_page.text and "Oskar Tamm" in lesson_page.text
    lesson_url = created.headers["Location"]
    lesson_url = lesson_url if lesson_url.startswith("http") else url + lesson_url

    odd = _post(
        browser,
        lesson_url,
        {"topic": "Taimede kasvamine kevadel", f"mark-{laagri.ids['mia']}": "haige"},
        lesson_page.text,
    )
    assert odd.status_code == 400 and "Vali „kohal”, „puudus” või „hilines”" in odd.text
    assert ">Taimede kasvamine kevadel</textarea>" in odd.text
    topic = {"topic": "Taimede kasvamine kevadel"}
    mia, oskar = f"mark-{laagri.ids['mia']}", f"mark-{laagri.ids['oskar']}"
    # A pupil left unmarked: listed, and nothing saved until the teacher says so.
    asked = _post(browser, lesson_url, {**topic, mia: "absent"}, lesson_page.text)
    assert asked.status_code == 200
    unmarked = re.search(
        r'<div class="warning" role="alert" id="unmarked">.*?</div>', asked.text, re.S
    )
    assert unmarked and "Oskar Tamm" in unmarked.group(0) and "Mia Mägi" not in unmarked.group(0)
    assert re.search(rf'name="{mia}" value="absent" checked', asked.text)
    assert "Taimede kasvamine kevadel" not in _get(browser, url + "/").text
    # "Märgi kõik kohal": everyone without another mark is present, and it is saved.
    all_present = _post(
        browser, lesson_url, {**topic, mia: "absent", "all_present": "1"}, asked.text
    )
    again = _follow(browser, all_present, url)
    assert re.search(rf'name="{oskar}" value="present" checked', again.text)
    assert re.search(rf'name="{mia}" value="absent" checked', again.text)
    saved = _post(browser, lesson_url, {**topic, mia: "absent", oskar: "late"}, again.text)
    after = _follow(browser, saved, url)
    assert "Salvestatud" in after.text and "Taimede kasvamine kevadel" in after.text
    assert re.search(rf'name="mark-{laagri.ids["mia"]}" value="absent" checked', after.text)

    parent = Browser(idp)
    _sign_in(parent, url, laagri.juri)
    home = _get(parent, url + "/")
    assert "Taimede kasvamine kevadel" in home.text and "puudus" in home.text
    child = _get(parent, f"{url}/children/{laagri.ids['mia']}")
    assert "Puudumisi: 1" in child.text and "Hilinemisi: 1" in child.text


def test_a_teacher_of_another_class_cannot_edit(browser, laagri, idp):
    url = laagri.school.url
    _sign_in(browser, url, laagri.peeter)
    lesson_url = f"{url}/lessons/{laagri.ids['lesson_math']}"
    page = _get(browser, lesson_url)
    assert page.status_code == 403 and "Sul ei ole selle tunni muutmiseks õigust" in page.text
    own = _get(browser, f"{url}/lessons/{laagri.ids['lesson_loodus']}")
    assert own.status_code == 200 and "Veeringe looduses" in own.text
    attempt = _post(
        browser,
        lesson_url,
        {"topic": "Võõras teema", f"mark-{laagri.ids['mia']}": "absent"},
        own.text,
    )
    assert attempt.status_code == 403
    form = _get(browser, f"{url}/lessons/new")
    assert "3.a" not in form.text
    foreign = _post(
        browser,
        f"{url}/lessons/new",
        {
            "class_id": str(laagri.ids["class_3a"]),
            "subject": "Kunst",
            "held_on": dt.date.today().isoformat(),
        },
        form.text,
    )
    assert foreign.status_code == 400 and "Vali klass" in foreign.text

    parent = Browser(idp)
    _sign_in(parent, url, laagri.juri)
    home = _get(parent, url + "/")
    assert "Murdude liitmine" in home.text and "Võõras teema" not in home.text
    assert "puudus" not in home.text


def test_admin_creates_a_class_and_enrols_a_student(browser, laagri, idp):
    url = laagri.school.url
    _sign_in(browser, url, laagri.kaja)
    home = _get(browser, url + "/")
    assert "Klassid ja õpilased" in home.text
    classes = _get(browser, f"{url}/admin/classes")
    assert classes.status_code == 200 and "3.a" in classes.text and "Tiina Õunapuu" in classes.text

    empty = _post(browser, f"{url}/admin/classes", {"name": "  ", "teacher_id": ""}, classes.text)
    assert empty.status_code == 400 and "Kirjuta klassi nimi" in empty.text
    twice = _post(browser, f"{url}/admin/classes", {"name": "3.A", "teacher_id": ""}, classes.text)
    assert twice.status_code == 400 and "juba olemas" in twice.text
    tiina = _option(classes.text, "Tiina Õunapuu")
    assert "Jüri Mägi" not in classes.text  # only teachers can be class teachers
    created = _post(
        browser, f"{url}/admin/classes", {"name": "1.b", "teacher_id": tiina}, classes.text
    )
    class_page = _follow(browser, created, url)
    assert "Klass 1.b" in class_page.text and "Klass 1.b on lisatud" in class_page.text
    assert re.search(rf'<option value="{tiina}" selected>Tiina Õunapuu', class_page.text)
    class_url = url + created.headers["Location"].removeprefix(url)
    enrol_url = class_url + "/students"

    wrong = _post(
        browser,
        enrol_url,
        {"given_name": "Robin", "family_name": "Kuusk", "isikukood": "51503150270"},
        class_page.text,
    )
    assert wrong.status_code == 400 and "Isikukood ei ole korrektne" in wrong.text
    assert 'value="Robin"' in wrong.text and 'value="Kuusk"' in wrong.text
    nameless = _post(
        browser,
        enrol_url,
        {"given_name": "", "family_name": "Kuusk", "isikukood": ""},
        class_page.text,
    )
    assert nameless.status_code == 400 and "Kirjuta õpilase eesnimi" in nameless.text

    code = _valid_isikukood("5150315027")
    enrolled = _post(
        browser,
        enrol_url,
        {"given_name": "Robin", "family_name": "Kuusk", "isikukood": code},
        class_page.text,
    )
    assert code not in enrolled.headers["Location"]
    class_page = _follow(browser, enrolled, url)
    assert "Robin Kuusk" in class_page.text and "lisatud klassi 1.b" in class_page.text
    assert code not in class_page.text
    again = _post(
        browser,
        enrol_url,
        {"given_name": "Robin", "family_name": "Kuusk", "isikukood": code},
        class_page.text,
    )
    assert again.status_code == 400 and "juba kooli nimekirjas" in again.text

    student_link = re.search(r'href="(/admin/students/\d+)">Robin Kuusk', class_page.text)
    assert student_link, class_page.text
    student_url = url + student_link.group(1)
    student = _get(browser, student_url)
    assert code not in student.text and "Isikukood on sisestatud" in student.text
    juri = _option(student.text, "Jüri Mägi")
    linked = _follow(
        browser, _post(browser, student_url + "/guardians", {"member_id": juri}, student.text), url
    )
    assert "Jüri Mägi on nüüd õpilase Robin Kuusk vanem" in linked.text
    moved = _follow(
        browser,
        _post(
            browser, student_url + "/move", {"class_id": str(laagri.ids["class_3a"])}, linked.text
        ),
        url,
    )
    assert "Robin Kuusk on nüüd klassis 3.a" in moved.text and "Klass: 3.a" in moved.text

    parent = Browser(idp)
    _sign_in(parent, url, laagri.juri)
    home = _get(parent, url + "/")
    assert "Robin Kuusk" in home.text and "Mia Mägi" in home.text
    assert "Murdude liitmine" in home.text  # Robin's new class's lessons


def test_news_posted_by_a_teacher_shows_on_parents_dashboard(browser, laagri, idp):
    url = laagri.school.url
    _sign_in(browser, url, laagri.tiina)
    form = _get(browser, f"{url}/news/new")
    assert form.status_code == 200
    empty = _post(
        browser, f"{url}/news/new", {"title": "", "body": "Tekst", "event_on": "homme"}, form.text
    )
    assert empty.status_code == 400 and "Kirjuta pealkiri" in empty.text
    assert "Kuupäev ei ole korrektne" in empty.text and ">Tekst</textarea>" in empty.text
    news = _post(
        browser,
        f"{url}/news/new",
        {
            "title": "Raamatukogu uued raamatud",
            "body": "Raamatukogus on 20 uut lasteraamatut.",
            "event_on": "",
        },
        form.text,
    )
    listed = _follow(browser, news, url)
    assert "Uudis on avaldatud" in listed.text and "Raamatukogu uued raamatud" in listed.text
    fair = dt.date.today() + dt.timedelta(days=10)
    event = _post(
        browser,
        f"{url}/news/new",
        {
            "title": "Kevadlaat",
            "body": "Laat toimub kooli aulas.",
            "event_on": fair.strftime("%d.%m.%Y"),
        },
        form.text,
    )
    assert _follow(browser, event, url).status_code == 200

    parent = Browser(idp)
    _sign_in(parent, url, laagri.kadri)
    home = _get(parent, url + "/")
    assert "Raamatukogu uued raamatud" in home.text and "Kevadlaat" in home.text
    assert "Tulevased sündmused" in home.text and fair.strftime("%d.%m.%Y") in home.text
    assert "Lisa uudis" not in home.text
    assert _get(parent, f"{url}/news/new").status_code == 403


def test_a_parent_cannot_open_admin_pages(browser, laagri):
    url = laagri.school.url
    _sign_in(browser, url, laagri.juri)
    for path in (
        "/admin/classes",
        f"/admin/classes/{laagri.ids['class_3a']}",
        f"/admin/students/{laagri.ids['mia']}",
        "/lessons/new",
        f"/lessons/{laagri.ids['lesson_math']}",
    ):
        page = _get(browser, url + path)
        assert page.status_code == 403, path
        assert "Sul ei ole sellele lehele ligipääsu" in page.text
    profile = _get(browser, url + "/profile")  # a page with a form: a valid CSRF token
    forged = _post(browser, f"{url}/admin/classes", {"name": "9.z"}, profile.text)
    assert forged.status_code == 403
    assert "9.z" not in _get(browser, url + "/").text


def test_another_schools_rows_are_not_found(browser, laagri, make_tenant, make_person, school_app):
    from school_instance.models import SchoolClass, Student

    other = make_tenant("Laagri Huvialakool")
    admin = make_person(other.client, "Kaja", "Kask", roles=("admin", "teacher"))
    with _diary(school_app, other) as (db, tid):
        _member(db, tid, admin, ["admin", "teacher"])
        db.add(Student(tenant_id=tid, class_id=None, given_name="Karl", family_name="Mägi"))
        db.add(SchoolClass(tenant_id=tid, name="Robootikaring"))
    _sign_in(browser, other.url, admin)
    ids = laagri.ids
    for path in (
        f"/lessons/{ids['lesson_math']}",
        f"/children/{ids['mia']}",
        f"/admin/students/{ids['mia']}",
        f"/admin/classes/{ids['class_3a']}",
    ):
        page = _get(browser, other.url + path)
        assert page.status_code == 404, path
        assert "Lehte ei leitud" in page.text and "Mia" not in page.text
    home = _get(browser, other.url + "/admin/classes")
    assert "Robootikaring" in home.text and "4.b" not in home.text
    for path, data in (
        (f"/lessons/{ids['lesson_math']}", {"topic": "Sissetung"}),
        (
            f"/admin/classes/{ids['class_3a']}/students",
            {"given_name": "Võõras", "family_name": "Laps"},
        ),
        (f"/admin/students/{ids['mia']}/move", {"class_id": str(ids["class_4b"])}),
    ):
        assert _post(browser, other.url + path, data, home.text).status_code == 404, path

    teacher = Browser(browser.issuer)
    _sign_in(teacher, laagri.school.url, laagri.tiina)
    lesson = _get(teacher, f"{laagri.school.url}/lessons/{ids['lesson_math']}")
    assert "Murdude liitmine" in lesson.text and "Sissetung" not in lesson.text
    assert "Võõras" not in lesson.text


def test_teacher_in_one_school_is_a_parent_in_another(
    browser, make_tenant, make_person, link_account, school_app
):
    from school_instance.models import Guardian, Lesson, SchoolClass, Student

    kool = make_tenant("Laagri Kool")
    lasteaed = make_tenant("Laagri Lasteaed")
    tiina = make_person(kool.client, "Tiina", "Õunapuu", roles=("teacher",))
    sub_there = link_account(tiina, lasteaed.client, ["parent"])
    with _diary(school_app, kool) as (db, tid):
        me = _member(db, tid, tiina, ["teacher"])
        cls = SchoolClass(tenant_id=tid, name="2.b", teacher_id=me)
        db.add(cls)
        db.flush()
        db.add(
            Lesson(
                tenant_id=tid,
                class_id=cls.id,
                teacher_id=me,
                subject="Matemaatika",
                held_on=dt.date.today(),
                topic="Korrutustabel",
            )
        )
    with _diary(school_app, lasteaed) as (db, tid):
        me = _member(db, tid, tiina, ["parent"], sub=sub_there)
        group = SchoolClass(tenant_id=tid, name="Päikesekiired")
        db.add(group)
        db.flush()
        lotte = Student(tenant_id=tid, class_id=group.id, given_name="Lotte", family_name="Õunapuu")
        db.add(lotte)
        db.flush()
        db.add(Guardian(tenant_id=tid, student_id=lotte.id, member_id=me))
        db.add(
            Lesson(
                tenant_id=tid,
                class_id=group.id,
                subject="Muusika",
                held_on=dt.date.today(),
                topic="Kevadlaulud",
            )
        )

    _sign_in(browser, kool.url, tiina)
    at_school = _get(browser, kool.url + "/")
    assert "Sinu klassid" in at_school.text and "2.b" in at_school.text
    assert "Korrutustabel" in at_school.text
    assert "Sinu lapsed" not in at_school.text and "Lotte" not in at_school.text

    there = browser.follow(f"{lasteaed.url}/auth/login", stop_prefix="\x00")
    assert there.status_code == 200 and there.url.startswith(lasteaed.url)
    assert 'name="password"' not in there.text  # one login for both
    assert "Sinu lapsed" in there.text and "Lotte Õunapuu" in there.text
    assert "Kevadlaulud" in there.text and "Päikesekiired" in there.text
    assert "Sinu klassid" not in there.text and "Korrutustabel" not in there.text
    assert _get(browser, f"{lasteaed.url}/lessons/new").status_code == 403
