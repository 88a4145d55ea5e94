"""The e-diary's data; every row carries its school (tenant)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TZDateTime, utcnow


class DiaryBase(DeclarativeBase):
    """Declarative base of the school instance (its own metadata and migrations)."""


class Tenant(DiaryBase):
    """A school served by this deployment, and its OIDC client registration at the IdP."""

    __tablename__ = "diary_tenant"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str] = mapped_column(String(500))
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(64))
    client_secret: Mapped[str] = mapped_column(String(200))
    default_locale: Mapped[str] = mapped_column(String(8), default="et")
    # The school's own logo in the bar (the IdP's /schools/<slug>/logo); none: its initial.
    logo_url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="active")


class Member(DiaryBase):
    """A local copy of a person known to this school (keyed by the IdP account's sub)."""

    __tablename__ = "diary_member"
    __table_args__ = (UniqueConstraint("tenant_id", "sub", name="uq_member_sub"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("diary_tenant.id"), index=True)
    sub: Mapped[str | None] = mapped_column(String(64))
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The IdP person's version this copy is of (0: not known yet); only newer events apply.
    version: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def name(self) -> str:
        """Full name."""
        return f"{self.given_name} {self.family_name}".strip()


class SchoolClass(DiaryBase):
    """A class (or a hobby group), with its class teacher."""

    __tablename__ = "diary_class"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("diary_tenant.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    teacher_id: Mapped[int | None] = mapped_column(ForeignKey("diary_member.id"))


class Student(DiaryBase):
    """A child on the school's roster, enrolled in one class."""

    __tablename__ = "diary_student"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("diary_tenant.id"), index=True)
    class_id: Mapped[int | None] = mapped_column(ForeignKey("diary_class.id"))
    # The child's own account at this school, when they have one.
    member_id: Mapped[int | None] = mapped_column(ForeignKey("diary_member.id"))
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    isikukood: Mapped[str | None] = mapped_column(String(11))

    @property
    def name(self) -> str:
        """Full name."""
        return f"{self.given_name} {self.family_name}".strip()


class Guardian(DiaryBase):
    """A parent ↔ child relation at this school."""

    __tablename__ = "diary_guardian"
    __table_args__ = (UniqueConstraint("student_id", "member_id", name="uq_guardian"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("diary_tenant.id"), index=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("diary_student.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("diary_member.id"))
    relation: Mapped[str] = mapped_column(String(32), default="parent")


class Lesson(DiaryBase):
    """A lesson held: subject, date and the topic the teacher wrote."""

    __tablename__ = "diary_lesson"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("diary_tenant.id"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("diary_class.id"))
    teacher_id: Mapped[int | None] = mapped_column(ForeignKey("diary_member.id"))
    subject: Mapped[str] = mapped_column(String(100))
    held_on: Mapped[dt.date] = mapped_column(Date)
    topic: Mapped[str | None] = mapped_column(Text)


class Attendance(DiaryBase):
    """A student's attendance at one lesson."""

    __tablename__ = "diary_attendance"
    __table_args__ = (UniqueConstraint("lesson_id", "student_id", name="uq_attendance"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("diary_tenant.id"), index=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("diary_lesson.id"))
    student_id: Mapped[int] = mapped_column(ForeignKey("diary_student.id"))
    status: Mapped[str] = mapped_column(String(16))  # present, absent, late


class Announcement(DiaryBase):
    """News or an event from the school or a teacher."""

    __tablename__ = "diary_announcement"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("diary_tenant.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("diary_member.id"))
    kind: Mapped[str] = mapped_column(String(16), default="news")  # news, event
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    event_on: Mapped[dt.date | None] = mapped_column(Date)
    # The audience: one class (its pupils, their guardians, its teacher), or None: the school.
    class_id: Mapped[int | None] = mapped_column(ForeignKey("diary_class.id"))
    created_at: Mapped[dt.datetime] = mapped_column(TZDateTime(), default=utcnow)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
