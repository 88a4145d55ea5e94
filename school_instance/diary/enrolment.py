"""An admin's pages for students: enrolment, guardians, moving between classes."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from school_instance.diary import queries
from school_instance.diary.admin import class_page
from school_instance.diary.blueprint import bp
from school_instance.diary.forms import Form
from school_instance.models import Guardian, SchoolClass, Student
from school_instance.sso import role_required
from school_instance.tenancy import current, get_scoped
from shared.db import get_db
from shared.isikukood import is_valid
from shared.security import check_csrf


def _isikukood(form: Form) -> str | None:
    """The optional isikukood: valid, and not on the school's roster already."""
    code = form.get("isikukood").replace(" ", "")
    if not code:
        return None
    if not (len(code) == 11 and code.isdigit() and is_valid(code)):
        form.errors["isikukood"] = _(
            "Isikukood ei ole korrektne. Kontrolli, et kõik 11 numbrit on õiged."
        )
    elif queries.student_with_code(code) is not None:
        form.errors["isikukood"] = _("Selle isikukoodiga õpilane on juba kooli nimekirjas.")
    return code


@bp.post("/admin/classes/<int:class_id>/students")
@role_required("admin")
def enrol(class_id: int) -> Any:
    """Add a student to the class."""
    check_csrf()
    cls = get_scoped(SchoolClass, class_id)
    form = Form(request.form)
    given = form.text("given_name", _("Kirjuta õpilase eesnimi."), 200)
    family = form.text("family_name", _("Kirjuta õpilase perekonnanimi."), 200)
    code = _isikukood(form)
    if not form.ok:
        return class_page(cls, form)
    student = Student(
        tenant_id=current().id,
        class_id=cls.id,
        given_name=given,
        family_name=family,
        isikukood=code,
    )
    get_db().add(student)
    flash(_("%(name)s on lisatud klassi %(cls)s.", name=student.name, cls=cls.name))
    return redirect(url_for("diary.school_class", class_id=cls.id), 303)


def _student_page(student: Student, error: str | None = None) -> Any:
    guardians = queries.guardians_of(student.id)
    taken = {m.id for m in guardians}
    return render_template(
        "diary/student.html",
        student=student,
        guardians=guardians,
        cls=get_scoped(SchoolClass, student.class_id) if student.class_id else None,
        classes=queries.all_classes(),
        parents=[m for m in queries.members_with_role("parent") if m.id not in taken],
        error=error,
    ), 400 if error else 200


@bp.get("/admin/students/<int:student_id>")
@role_required("admin")
def student(student_id: int) -> Any:
    """A student's class and guardians, with forms to change them."""
    return _student_page(get_scoped(Student, student_id))


@bp.post("/admin/students/<int:student_id>/move")
@role_required("admin")
def move(student_id: int) -> Any:
    """Move the student to another class."""
    check_csrf()
    student = get_scoped(Student, student_id)
    form = Form(request.form)
    class_id = form.choice(
        "class_id", {c.id: c for c in queries.all_classes()}, _("Vali klass, kuhu õpilane viia.")
    )
    if class_id is None:
        return _student_page(student, form.errors["class_id"])
    student.class_id = class_id
    cls = get_scoped(SchoolClass, class_id)
    flash(_("%(name)s on nüüd klassis %(cls)s.", name=student.name, cls=cls.name))
    return redirect(url_for("diary.student", student_id=student.id), 303)


@bp.post("/admin/students/<int:student_id>/guardians")
@role_required("admin")
def add_guardian(student_id: int) -> Any:
    """Attach a parent (a member of the school) to the student."""
    check_csrf()
    student = get_scoped(Student, student_id)
    taken = {m.id for m in queries.guardians_of(student.id)}
    parents = {m.id: m for m in queries.members_with_role("parent") if m.id not in taken}
    form = Form(request.form)
    member_id = form.choice("member_id", parents, _("Vali lapsevanem nimekirjast."))
    if member_id is None:
        return _student_page(student, form.errors["member_id"])
    get_db().add(Guardian(tenant_id=current().id, student_id=student.id, member_id=member_id))
    flash(
        _(
            "%(parent)s on nüüd õpilase %(name)s vanem.",
            parent=parents[member_id].name,
            name=student.name,
        )
    )
    return redirect(url_for("diary.student", student_id=student.id), 303)
