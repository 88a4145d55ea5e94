"""A parent's view: their own children's lessons and attendance, nobody else's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, render_template

from school_instance.diary import queries
from school_instance.diary.blueprint import bp
from school_instance.models import Lesson, Member, SchoolClass, Student
from school_instance.sso import login_required
from school_instance.tenancy import get_scoped


@dataclass
class ChildDiary:
    """What a parent sees of one child: the class, its lessons and the child's marks."""

    student: Student
    school_class: SchoolClass | None
    teacher: Member | None
    lessons: list[Lesson]
    marks: dict[int, str]

    def count(self, status: str) -> int:
        """How many lessons carry this mark."""
        return sum(1 for mark in self.marks.values() if mark == status)


def child_diary(student: Student, limit: int | None) -> ChildDiary:
    """Gather one child's diary (the latest `limit` lessons, or all)."""
    cls = get_scoped(SchoolClass, student.class_id) if student.class_id else None
    lessons = queries.lessons_of([cls.id], limit) if cls else []
    teacher = queries.members_by_id([cls.teacher_id]).get(cls.teacher_id or 0) if cls else None
    return ChildDiary(student, cls, teacher, lessons, queries.marks_of_student(student.id, lessons))


def my_children(limit: int) -> list[ChildDiary]:
    """The signed-in person's children with their latest lessons."""
    return [child_diary(s, limit) for s in queries.children_of(queries.my_id())]


@bp.get("/children/<int:student_id>")
@login_required
def child(student_id: int) -> Any:
    """A child's lessons and attendance, for the child's guardians only."""
    student = get_scoped(Student, student_id)
    if not queries.is_guardian(queries.my_id(), student.id):
        abort(404)
    return render_template("diary/child.html", diary=child_diary(student, None))
