"""An admin's pages: the school's classes and their class teachers."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from school_instance.diary import queries
from school_instance.diary.blueprint import bp
from school_instance.diary.forms import Form
from school_instance.models import Member, SchoolClass
from school_instance.sso import role_required
from school_instance.tenancy import current, get_scoped
from shared.db import get_db
from shared.security import check_csrf


def teacher_choice(form: Form) -> int | None:
    """The chosen class teacher: empty for none, else one of the school's teachers."""
    if not form.get("teacher_id"):
        return None
    teachers = {m.id: m for m in queries.members_with_role("teacher")}
    return form.choice("teacher_id", teachers, _("Vali klassijuhataja õpetajate seast."))


def _classes_page(form: Form, status: int = 200) -> Any:
    classes = queries.all_classes()
    return render_template(
        "diary/classes.html",
        classes=classes,
        sizes=queries.class_sizes(),
        teachers=queries.members_by_id(c.teacher_id for c in classes),
        choices=queries.members_with_role("teacher"),
        form=form,
    ), status


@bp.route("/admin/classes", methods=["GET", "POST"])
@role_required("admin")
def classes() -> Any:
    """The school's classes, and a form to add one."""
    if request.method == "GET":
        return _classes_page(Form())
    check_csrf()
    form = Form(request.form)
    name = form.text("name", _("Kirjuta klassi nimi, näiteks „3.a”."), 100)
    teacher_id = teacher_choice(form)
    if name and any(c.name.lower() == name.lower() for c in queries.all_classes()):
        form.errors["name"] = _("Selle nimega klass on juba olemas.")
    if not form.ok:
        return _classes_page(form, 400)
    cls = SchoolClass(tenant_id=current().id, name=name, teacher_id=teacher_id)
    get_db().add(cls)
    get_db().flush()
    flash(_("Klass %(name)s on lisatud. Nüüd saad sinna õpilasi lisada.", name=name))
    return redirect(url_for("diary.school_class", class_id=cls.id), 303)


def class_page(cls: SchoolClass, enrol: Form | None = None, error: str | None = None) -> Any:
    """The class with its students and guardians, and the enrolment form."""
    students = queries.students_of(cls.id)
    teacher = get_scoped(Member, cls.teacher_id) if cls.teacher_id else None
    return render_template(
        "diary/class.html",
        cls=cls,
        teacher=teacher,
        students=students,
        guardians=queries.guardians_by_student(s.id for s in students),
        choices=queries.members_with_role("teacher"),
        enrol=enrol or Form(),
        error=error,
    ), 400 if error or (enrol and not enrol.ok) else 200


@bp.get("/admin/classes/<int:class_id>")
@role_required("admin")
def school_class(class_id: int) -> Any:
    """One class: its teacher and students."""
    return class_page(get_scoped(SchoolClass, class_id))


@bp.post("/admin/classes/<int:class_id>/teacher")
@role_required("admin")
def set_teacher(class_id: int) -> Any:
    """Change the class teacher."""
    check_csrf()
    cls = get_scoped(SchoolClass, class_id)
    form = Form(request.form)
    teacher_id = teacher_choice(form)
    if not form.ok:
        return class_page(cls, error=form.errors["teacher_id"])
    cls.teacher_id = teacher_id
    flash(_("Klassijuhataja on muudetud."))
    return redirect(url_for("diary.school_class", class_id=cls.id), 303)
