"""Demo schools and people for `make run`; idempotent, so restarts keep what exists."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from deploy.dev.diary_demo import (
    DEMO_DIARY,
    DEMO_STUDENT_CODES,
    MISTYPED,
    DemoClass,
    DemoNews,
)
from idp.models import Account, Person, School
from idp.people.accounts import create_account, hash_password
from idp.tenants.schools import add_school
from school_instance.models import (
    Announcement,
    Attendance,
    Guardian,
    Lesson,
    Member,
    SchoolClass,
    Student,
    Tenant,
)
from shared.db import get_db

DEMO_SCHOOLS = [
    ("laagri-kool", "Laagri Kool", 5001),
    ("laagri-huvialakool", "Laagri Huvialakool", 5002),
    ("laagri-lasteaed", "Laagri Lasteaed", 5003),
]
LOGOS = Path(__file__).parent / "logos"


def logo_data_url(slug: str) -> str:
    """The demo school's logo (the SVG in deploy/dev/logos) as the IdP stores it: a data URL."""
    svg = (LOGOS / f"{slug}.svg").read_bytes()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def school_hosts(port: int) -> list[str]:
    """The hosts a demo school answers at: its registered address first, then the loopback
    address people also type, which the school instance redirects to the registered one."""
    return [f"localhost:{port}", f"127.0.0.1:{port}"]


DEMO_PASSWORD = "Kevadine-Laagri-2026"

# (e-mail, given, family, isikukood, [(school, roles)], linked)
DEMO_PEOPLE: list[tuple[str, str, str, str, list[tuple[str, list[str]]], bool]] = [
    (
        "opetaja@laagri.demo",
        "Tiina",
        "Õunapuu",
        "48504120238",
        [("laagri-kool", ["teacher"]), ("laagri-lasteaed", ["parent"])],
        True,
    ),
    (
        "lapsevanem@laagri.demo",
        "Jüri",
        "Mägi",
        "38001085718",
        [("laagri-kool", ["parent"]), ("laagri-huvialakool", ["parent"])],
        False,
    ),
    (
        "admin@laagri.demo",
        "Kaja",
        "Kask",
        "47303030226",
        [
            ("laagri-kool", ["admin", "staff"]),
            ("laagri-huvialakool", ["admin"]),
            ("laagri-lasteaed", ["admin"]),
        ],
        True,
    ),
    # The school typed her e-mail wrong ("gmial"): she gets in with eID and corrects it.
    (MISTYPED, "Mari", "Maasikas", "48207152749", [("laagri-kool", ["parent"])], False),
]


def seed(app: Flask, state_file: Path) -> dict[str, Any]:
    """Register the demo schools and people once; return the schools' client credentials."""
    known: dict[str, Any] = json.loads(state_file.read_text()) if state_file.exists() else {}
    with app.app_context():
        db = get_db()
        for slug, name, port in DEMO_SCHOOLS:
            if db.scalar(select(School).where(School.slug == slug)) is None:
                issued = add_school(
                    db,
                    slug,
                    name,
                    f"http://localhost:{port}",
                    development=True,
                )
                known[slug] = {
                    "name": name,
                    "url": f"http://localhost:{port}",
                    "client_id": issued.client.client_id,
                    "client_secret": issued.secret,
                }
        db.flush()
        schools = {s.slug: s for s in db.scalars(select(School))}
        for slug, _name, _port in DEMO_SCHOOLS:  # new schools, and those seeded before logos
            schools[slug].logo = logo_data_url(slug)
        for email, given, family, code, memberships, linked in DEMO_PEOPLE:
            # By isikukood too: a demo person may have changed the e-mail since.
            if db.scalar(
                select(Account).where(Account.login_email == email)
            ) is not None or db.scalar(select(Person.id).where(Person.isikukood == code).limit(1)):
                continue
            person: Person | None = None
            for slug, roles in memberships:
                school = schools[slug]
                if person is None or not linked:
                    account = create_account(
                        db,
                        school.id,
                        email=email,
                        given_name=given,
                        family_name=family,
                        roles=roles,
                        isikukood=code,
                        password=DEMO_PASSWORD,
                    )
                    person = account.person
                else:
                    db.add(
                        Account(
                            person_id=person.id,
                            school_id=school.id,
                            sub=_sub(),
                            roles=roles,
                            login_email=email,
                        )
                    )
            if person is not None:
                person.password_hash = person.password_hash or hash_password(DEMO_PASSWORD)
                person.email_verified = True
        db.commit()
    state_file.write_text(json.dumps(known, indent=2))
    return known


def _sub() -> str:
    import secrets

    return secrets.token_urlsafe(24)


def seed_schools(school_app: Flask, clients: dict[str, Any], issuer: str) -> None:
    """Register the demo schools in the school instance, each on its own localhost port."""
    from school_instance.cli import add_tenant

    for slug, name, port in DEMO_SCHOOLS:
        creds = clients[slug]
        add_tenant(
            school_app,
            slug=slug,
            name=name,
            url=f"http://localhost:{port}",
            issuer=issuer,
            client_id=creds["client_id"],
            client_secret=creds["client_secret"],
            hosts=school_hosts(port),
            logo_url=f"{issuer}/schools/{slug}/logo",
        )


@dataclass(frozen=True)
class DemoAccount:
    """A demo login's account at one school: what the school instance keeps of it."""

    sub: str
    given_name: str
    family_name: str
    email: str
    roles: tuple[str, ...]


def demo_accounts(app: Flask) -> dict[tuple[str, str], DemoAccount]:
    """The demo logins' accounts in the IdP: (school slug, e-mail) → account."""
    emails = [person[0] for person in DEMO_PEOPLE]
    with app.app_context():
        rows = get_db().execute(
            select(Account, School.slug)
            .join(School, School.id == Account.school_id)
            .where(Account.login_email.in_(emails))
        )
        return {
            (slug, acc.login_email or ""): DemoAccount(
                acc.sub,
                acc.person.given_name,
                acc.person.family_name,
                acc.login_email or "",
                tuple(acc.roles),
            )
            for acc, slug in rows
        }


def seed_diary(school_app: Flask, accounts: dict[tuple[str, str], DemoAccount]) -> None:
    """Fill the demo schools' e-diaries once; members are keyed by the IdP accounts' subs."""
    with school_app.app_context():
        db = get_db()
        for slug, (classes, news) in DEMO_DIARY.items():
            tenant = db.scalar(select(Tenant).where(Tenant.slug == slug))
            if tenant is None:
                continue
            members = _demo_members(
                db, tenant.id, {email: acc for (s, email), acc in accounts.items() if s == slug}
            )
            codes = DEMO_STUDENT_CODES.get(slug, {})
            if db.scalar(select(SchoolClass).where(SchoolClass.tenant_id == tenant.id)):
                _demo_codes(db, tenant.id, codes)  # a roster seeded before the codes came
                continue  # seeded before: keep what people changed since
            for cls in classes:
                _demo_class(db, tenant.id, cls, members, codes)
            for item in news:
                _demo_news(db, tenant.id, item, members)
        db.commit()


def _demo_members(
    db: Session, tenant_id: int, accounts: dict[str, DemoAccount]
) -> dict[str, Member]:
    members: dict[str, Member] = {}
    for email, acc in accounts.items():
        member = db.scalar(
            select(Member).where(Member.tenant_id == tenant_id, Member.sub == acc.sub)
        )
        if member is None:
            member = Member(tenant_id=tenant_id, sub=acc.sub)
            db.add(member)
        member.given_name, member.family_name = acc.given_name, acc.family_name
        member.email, member.roles = email, list(acc.roles)
        members[email] = member
    db.flush()
    return members


def _school_day(days_ago: int) -> dt.date:
    day = dt.date.today() - dt.timedelta(days=days_ago)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def _demo_codes(db: Session, tenant_id: int, codes: dict[str, str]) -> None:
    """Give the demo children without a code theirs."""
    for student in db.scalars(
        select(Student).where(Student.tenant_id == tenant_id, Student.isikukood.is_(None))
    ):
        student.isikukood = codes.get(student.given_name)


def _demo_class(
    db: Session, tenant_id: int, demo: DemoClass, members: dict[str, Member], codes: dict[str, str]
) -> None:
    teacher = members.get(demo.teacher)
    if teacher is None:  # a teacher without a demo login: known only to this school
        given, family = demo.teacher.split(" ", 1)
        teacher = Member(
            tenant_id=tenant_id, sub=None, given_name=given, family_name=family, roles=["teacher"]
        )
        db.add(teacher)
        db.flush()
    cls = SchoolClass(tenant_id=tenant_id, name=demo.name, teacher_id=teacher.id)
    db.add(cls)
    db.flush()
    students: dict[str, Student] = {}
    for given, family, guardian in demo.students:
        student = Student(
            tenant_id=tenant_id,
            class_id=cls.id,
            given_name=given,
            family_name=family,
            isikukood=codes.get(given),
        )
        db.add(student)
        db.flush()
        students[given] = student
        if guardian in members:
            db.add(
                Guardian(tenant_id=tenant_id, student_id=student.id, member_id=members[guardian].id)
            )
    for item in demo.lessons:
        lesson = Lesson(
            tenant_id=tenant_id,
            class_id=cls.id,
            teacher_id=teacher.id,
            subject=item.subject,
            held_on=_school_day(item.days_ago),
            topic=item.topic,
        )
        db.add(lesson)
        db.flush()
        if item.marks is not None:
            db.add_all(
                [
                    Attendance(
                        tenant_id=tenant_id,
                        lesson_id=lesson.id,
                        student_id=s.id,
                        status=item.marks.get(given, "present"),
                    )
                    for given, s in students.items()
                ]
            )


def _demo_news(db: Session, tenant_id: int, item: DemoNews, members: dict[str, Member]) -> None:
    author = members.get(item.author)
    event_on = dt.date.today() + dt.timedelta(days=item.event_in) if item.event_in else None
    audience = db.scalar(
        select(SchoolClass.id).where(
            SchoolClass.tenant_id == tenant_id, SchoolClass.name == item.audience
        )
    )
    db.add(
        Announcement(
            tenant_id=tenant_id,
            author_id=author.id if author else None,
            class_id=audience if item.audience else None,
            kind="event" if event_on else "news",
            title=item.title,
            body=item.body,
            event_on=event_on,
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=item.days_ago),
        )
    )
