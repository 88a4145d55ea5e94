"""Reads of the e-diary; every one goes through scoped() so that it stays inside the school."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any, cast

from flask import g
from sqlalchemy import (
    Date,
    Row,
    Table,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    union,
    union_all,
)

from school_instance.diary.blueprint import TALLINN
from school_instance.models import (
    Announcement,
    Attendance,
    Guardian,
    Lesson,
    Member,
    SchoolClass,
    Student,
)
from school_instance.tenancy import current, get_scoped, scoped
from shared.db import get_db


def today() -> dt.date:
    """Today in Estonia."""
    return dt.datetime.now(TALLINN).date()


def my_id() -> int:
    """The signed-in person's member id at this school."""
    return int(g.user["member_id"])


def me() -> Member:
    """The signed-in person's member row at this school."""
    return get_scoped(Member, my_id())


def class_key(cls: SchoolClass) -> tuple[int, str]:
    """Sort classes as people expect: 2.a before 10.b."""
    found = re.match(r"\d+", cls.name)
    return (int(found.group()) if found else 10_000, cls.name.lower())


def person_key(row: Member | Student) -> tuple[str, str]:
    """Sort people by family name, then given name."""
    return (row.family_name.lower(), row.given_name.lower())


def members_with_role(role: str) -> list[Member]:
    """The school's members that have a role, by name."""
    rows = get_db().scalars(scoped(Member)).all()
    return sorted((m for m in rows if role in (m.roles or [])), key=person_key)


def members_by_id(ids: Iterable[int | None]) -> dict[int, Member]:
    """Members of this school by id."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {m.id: m for m in get_db().scalars(scoped(Member).where(Member.id.in_(wanted)))}


def all_classes() -> list[SchoolClass]:
    """Every class of the school, in order."""
    return sorted(get_db().scalars(scoped(SchoolClass)).all(), key=class_key)


def classes_taught(member_id: int) -> list[SchoolClass]:
    """The classes whose teacher the member is."""
    rows = get_db().scalars(scoped(SchoolClass).where(SchoolClass.teacher_id == member_id))
    return sorted(rows.all(), key=class_key)


def classes_by_id(ids: Iterable[int | None]) -> dict[int, SchoolClass]:
    """Classes of this school by id."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = get_db().scalars(scoped(SchoolClass).where(SchoolClass.id.in_(wanted)))
    return {c.id: c for c in rows}


def students_of(class_id: int) -> list[Student]:
    """The students enrolled in a class, by name."""
    rows = get_db().scalars(scoped(Student).where(Student.class_id == class_id)).all()
    return sorted(rows, key=person_key)


def students_by_id(ids: Iterable[int]) -> dict[int, Student]:
    """Students of this school by id."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {s.id: s for s in get_db().scalars(scoped(Student).where(Student.id.in_(wanted)))}


def class_sizes() -> dict[int, int]:
    """How many students each class has: class id → count."""
    query = (
        scoped(Student).with_only_columns(Student.class_id, func.count()).group_by(Student.class_id)
    )
    return {row[0]: int(row[1]) for row in get_db().execute(query) if row[0] is not None}


def student_with_code(code: str) -> Student | None:
    """The school's student with this isikukood, if any."""
    return get_db().scalar(scoped(Student).where(Student.isikukood == code))


# Built once: every start page runs it (both tables kept inside the school).
_CHILDREN = (
    select(Student)
    .join(Guardian, Guardian.student_id == Student.id)
    .where(
        Student.tenant_id == bindparam("tenant_id"),
        Guardian.tenant_id == bindparam("tenant_id"),
        Guardian.member_id == bindparam("member_id"),
    )
)


def children_of(member_id: int) -> list[Student]:
    """The students the member is a guardian of, in one query."""
    rows = get_db().scalars(_CHILDREN, {"tenant_id": current().id, "member_id": member_id}).all()
    return sorted(rows, key=lambda s: s.given_name.lower())


def is_guardian(member_id: int, student_id: int) -> bool:
    """Whether the member is a guardian of the student."""
    return (
        get_db().scalar(
            scoped(Guardian).where(
                Guardian.member_id == member_id, Guardian.student_id == student_id
            )
        )
        is not None
    )


def guardians_of(student_id: int) -> list[Member]:
    """The student's guardians, by name."""
    return guardians_by_student([student_id]).get(student_id, [])


def guardians_by_student(student_ids: Iterable[int]) -> dict[int, list[Member]]:
    """Each of these students' guardians, by name, by student id (two queries in all)."""
    ids = list(student_ids)
    if not ids:
        return {}
    links = get_db().scalars(scoped(Guardian).where(Guardian.student_id.in_(ids))).all()
    members = members_by_id(link.member_id for link in links)
    found: dict[int, list[Member]] = {}
    for link in links:
        if link.member_id in members:
            found.setdefault(link.student_id, []).append(members[link.member_id])
    return {sid: sorted(rows, key=person_key) for sid, rows in found.items()}


def member_by_sub(sub: str) -> Member | None:
    """The school's local copy of an account, by its IdP sub."""
    return get_db().scalar(scoped(Member).where(Member.sub == sub))


def lessons_of(class_ids: Iterable[int], limit: int | None = None) -> list[Lesson]:
    """Lessons of some classes, the latest first."""
    ids = list(class_ids)
    if not ids:
        return []
    query = (
        scoped(Lesson)
        .where(Lesson.class_id.in_(ids))
        .order_by(Lesson.held_on.desc(), Lesson.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(get_db().scalars(query))


def marks_of_student(student_id: int, lessons: list[Lesson]) -> dict[int, str]:
    """A student's attendance marks at these lessons: lesson id → status."""
    if not lessons:
        return {}
    rows = get_db().scalars(
        scoped(Attendance).where(
            Attendance.student_id == student_id,
            Attendance.lesson_id.in_([lesson.id for lesson in lessons]),
        )
    )
    return {a.lesson_id: a.status for a in rows}


def marks_of_lesson(lesson_id: int) -> dict[int, Attendance]:
    """A lesson's attendance rows: student id → row."""
    rows = get_db().scalars(scoped(Attendance).where(Attendance.lesson_id == lesson_id))
    return {a.student_id: a for a in rows}


def lessons_with_marks(lesson_ids: Iterable[int]) -> set[int]:
    """Which of these lessons have any attendance marked."""
    ids = list(lesson_ids)
    if not ids:
        return set()
    return {
        a.lesson_id
        for a in get_db().scalars(scoped(Attendance).where(Attendance.lesson_id.in_(ids)))
    }


# The school's news and its coming events: plain statements built once (their cache keys are
# computed once), for the news page and, both in one round trip, for every start page; rows
# carry the columns the templates show. A class's announcement reaches the school's staff and
# admins (everyone: true) and the class's own people: its teacher, its pupils and their
# guardians (a subquery of the same statement, no round trip of its own).
_ANN = cast(Table, Announcement.__table__)
_CLS = cast(Table, SchoolClass.__table__)
_STU = cast(Table, Student.__table__)
_GRD = cast(Table, Guardian.__table__)
_ANN_COLS = (
    _ANN.c.id,
    _ANN.c.kind,
    _ANN.c.title,
    _ANN.c.body,
    _ANN.c.event_on,
    _ANN.c.created_at,
    _ANN.c.author_id,
    _ANN.c.class_id,
    _CLS.c.name.label("class_name"),
)
_MY_CLASSES = union(
    select(_CLS.c.id).where(
        _CLS.c.tenant_id == bindparam("tenant_id"), _CLS.c.teacher_id == bindparam("member_id")
    ),
    select(_STU.c.class_id).where(
        _STU.c.tenant_id == bindparam("tenant_id"), _STU.c.member_id == bindparam("member_id")
    ),
    select(_STU.c.class_id)
    .join(_GRD, _GRD.c.student_id == _STU.c.id)
    .where(_GRD.c.tenant_id == bindparam("tenant_id"), _GRD.c.member_id == bindparam("member_id")),
)
_AUDIENCE = or_(
    _ANN.c.class_id.is_(None),
    bindparam("everyone") == True,  # noqa: E712 (an SQL expression)
    _ANN.c.class_id.in_(_MY_CLASSES.scalar_subquery()),
)
_ANN_FROM = _ANN.outerjoin(_CLS, _CLS.c.id == _ANN.c.class_id)
_LATEST = (
    select(*_ANN_COLS)
    .select_from(_ANN_FROM)
    .where(_ANN.c.tenant_id == bindparam("tenant_id"), _AUDIENCE)
    .order_by(_ANN.c.created_at.desc(), _ANN.c.id.desc())
    .limit(bindparam("limit"))
)
_COMING = (
    select(*_ANN_COLS)
    .select_from(_ANN_FROM)
    .where(
        _ANN.c.tenant_id == bindparam("tenant_id"),
        _AUDIENCE,
        _ANN.c.event_on.is_not(None),
        _ANN.c.event_on >= bindparam("today", type_=Date()),
    )
    .order_by(_ANN.c.event_on, _ANN.c.id)
    .limit(bindparam("limit"))
)
_LATEST_PART, _COMING_PART = _LATEST.subquery(), _COMING.subquery()
_NEWS_AND_EVENTS = union_all(
    select(_LATEST_PART, literal_column("0").label("part")),
    select(_COMING_PART, literal_column("1").label("part")),
)


def _announcements(statement: Any, limit: int) -> list[Row[Any]]:
    """Run one of the announcement statements for this school, as the signed-in person sees
    it (staff and admins see every class's announcements)."""
    user = g.get("user") or {}
    everyone = bool({"admin", "staff"} & set(user.get("roles") or []))
    params = {
        "tenant_id": current().id,
        "limit": limit,
        "today": today(),
        "member_id": user.get("member_id") or 0,
        "everyone": everyone,
    }
    return list(get_db().execute(statement, params))


def latest_news(limit: int) -> list[Row[Any]]:
    """The school's announcements, the newest first."""
    return _announcements(_LATEST, limit)


def upcoming_events(limit: int) -> list[Row[Any]]:
    """Events from today on, the nearest first."""
    return _announcements(_COMING, limit)


def news_and_events(limit: int) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """latest_news(limit) and upcoming_events(limit) in one round trip (the start page)."""
    rows = _announcements(_NEWS_AND_EVENTS, limit)
    news = sorted(
        (r for r in rows if r.part == 0), key=lambda a: (a.created_at, a.id), reverse=True
    )
    events = sorted((r for r in rows if r.part == 1), key=lambda a: (a.event_on, a.id))
    return news, events
