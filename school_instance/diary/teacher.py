"""A teacher's pages: a new lesson, its topic and attendance in one form."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from school_instance.diary import queries
from school_instance.diary.blueprint import MARKS, bp, has_role
from school_instance.diary.forms import Form
from school_instance.models import Attendance, Lesson, SchoolClass, Student
from school_instance.sso import page, role_required
from school_instance.tenancy import current, get_scoped
from shared.db import get_db
from shared.security import check_csrf

SUBJECTS = (
    "Eesti keel",
    "Kirjandus",
    "Matemaatika",
    "Inglise keel",
    "Vene keel",
    "Loodusõpetus",
    "Inimeseõpetus",
    "Ajalugu",
    "Muusika",
    "Kunst",
    "Kehaline kasvatus",
    "Tööõpetus",
)


def editable_classes() -> list[SchoolClass]:
    """The classes the signed-in person may add lessons to (an admin: all of them)."""
    if has_role("admin"):
        return queries.all_classes()
    return queries.classes_taught(queries.my_id())


def may_edit(lesson: Lesson, cls: SchoolClass) -> bool:
    """Only the class's teacher, the lesson's own teacher or an admin edits a lesson."""
    if has_role("admin"):
        return True
    me = queries.my_id()
    return has_role("teacher") and me in (cls.teacher_id, lesson.teacher_id)


def recent_lessons(classes: list[SchoolClass]) -> list[tuple[Lesson, SchoolClass, bool]]:
    """The latest lessons of these classes, with their class and whether marks exist."""
    by_id = {c.id: c for c in classes}
    lessons = queries.lessons_of(by_id, limit=8)
    marked = queries.lessons_with_marks(lesson.id for lesson in lessons)
    return [(lesson, by_id[lesson.class_id], lesson.id in marked) for lesson in lessons]


def _forbidden() -> Response:
    return page(
        _("Sul ei ole selle tunni muutmiseks õigust"),
        _("Tunni teemat ja kohalolekut saab muuta klassi õpetaja või kooli administraator."),
        403,
        (_("Avalehele"), "/"),
    )


def _new_page(form: Form, classes: list[SchoolClass], status: int = 200) -> Any:
    return render_template(
        "diary/lesson_new.html", form=form, classes=classes, subjects=SUBJECTS
    ), status


@bp.route("/lessons/new", methods=["GET", "POST"])
@role_required("teacher", "admin")
def new_lesson() -> Any:
    """Add a lesson (class, subject, date) to a class the teacher teaches."""
    classes = editable_classes()
    if request.method == "GET":
        return _new_page(
            Form(
                {"class_id": request.args.get("class", ""), "held_on": queries.today().isoformat()}
            ),
            classes,
        )
    check_csrf()
    form = Form(request.form)
    class_id = form.choice(
        "class_id", {c.id: c for c in classes}, _("Vali klass, kus tund toimus.")
    )
    subject = form.text("subject", _("Kirjuta õppeaine, näiteks „Matemaatika”."), 100)
    held_on = form.date("held_on")
    if not form.ok or class_id is None or held_on is None:
        return _new_page(form, classes, 400)
    lesson = Lesson(
        tenant_id=current().id,
        class_id=class_id,
        teacher_id=queries.my_id(),
        subject=subject,
        held_on=held_on,
    )
    get_db().add(lesson)
    get_db().flush()
    flash(_("Tund on lisatud. Kirjuta tunni teema ja märgi kohalolek."))
    return redirect(url_for("diary.lesson", lesson_id=lesson.id), 303)


def _roster(lesson: Lesson, marks: dict[int, Attendance]) -> list[Student]:
    """The class's students now, and anyone marked at this lesson before moving away."""
    students = {s.id: s for s in queries.students_of(lesson.class_id)}
    missing = [sid for sid in marks if sid not in students]
    students.update(queries.students_by_id(missing))
    return sorted(students.values(), key=queries.person_key)


def _lesson_page(
    lesson: Lesson,
    cls: SchoolClass,
    form: Form,
    students: list[Student],
    status: int = 200,
    unmarked: list[Student] | None = None,
) -> Any:
    return render_template(
        "diary/lesson.html",
        lesson=lesson,
        cls=cls,
        form=form,
        students=students,
        marks=MARKS,
        unmarked=unmarked or [],
    ), status


@bp.get("/lessons/<int:lesson_id>")
@role_required("teacher", "admin")
def lesson(lesson_id: int) -> Any:
    """The lesson's topic and attendance form."""
    lesson = get_scoped(Lesson, lesson_id)
    cls = get_scoped(SchoolClass, lesson.class_id)
    if not may_edit(lesson, cls):
        return _forbidden()
    marks = queries.marks_of_lesson(lesson.id)
    values = {f"mark-{sid}": a.status for sid, a in marks.items()}
    return _lesson_page(
        lesson, cls, Form({"topic": lesson.topic or "", **values}), _roster(lesson, marks)
    )


@bp.post("/lessons/<int:lesson_id>")
@role_required("teacher", "admin")
def save_lesson(lesson_id: int) -> Any:
    """Save the topic and every student's attendance in one go. "Märgi kõik kohal" marks
    everyone without another mark present; saving with pupils left unmarked first lists them
    and asks (nothing is saved until the teacher says so)."""
    check_csrf()
    lesson = get_scoped(Lesson, lesson_id)
    cls = get_scoped(SchoolClass, lesson.class_id)
    if not may_edit(lesson, cls):
        return _forbidden()
    marks = queries.marks_of_lesson(lesson.id)
    students = _roster(lesson, marks)
    form = Form(request.form)
    topic = form.text("topic", "", 2000, required=False)
    chosen: dict[int, str] = {}
    for student in students:
        value = form.get(f"mark-{student.id}")
        if value and value not in MARKS:
            form.errors[f"mark-{student.id}"] = _("Vali „kohal”, „puudus” või „hilines”.")
        elif value:
            chosen[student.id] = value
    if not form.ok:
        return _lesson_page(lesson, cls, form, students, 400)
    if request.form.get("all_present") == "1":
        for student in students:
            if chosen.setdefault(student.id, "present") == "present":
                form.values[f"mark-{student.id}"] = "present"
    unmarked = [s for s in students if s.id not in chosen and s.id not in marks]
    if unmarked and request.form.get("confirm_unmarked") != "1":
        return _lesson_page(lesson, cls, form, students, 200, unmarked)
    lesson.topic = topic or None
    for student_id, status in chosen.items():
        row = marks.get(student_id)
        if row is None:
            get_db().add(
                Attendance(
                    tenant_id=current().id,
                    lesson_id=lesson.id,
                    student_id=student_id,
                    status=status,
                )
            )
        else:
            row.status = status
    flash(_("Salvestatud: tunni teema ja %(n)s õpilase kohalolek.", n=len(chosen)))
    return redirect(url_for("diary.lesson", lesson_id=lesson.id), 303)
