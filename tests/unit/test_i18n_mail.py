"""Every e-mail renders in Estonian, Russian and English with nothing of another language in it;
the subject is the first line and speaks the recipient's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.i18n_support import LANGS, ROOT, leaks

MAIL_DIR = ROOT / "idp" / "templates" / "mail"
TEMPLATES = sorted(p.stem for p in MAIL_DIR.glob("*.txt"))
CONTEXT = {
    "given_name": "Aino",
    "new_email": "aino.uus@example.ee",
    "old_email": "aino@example.ee",
    "reason": "—",
}
DATA = {"aino", "uus", "vabakool"}
GREETING = {"et": "Tere", "ru": "Здравствуйте", "en": "Hello"}


def test_every_mail_template_is_covered():
    assert TEMPLATES == [
        "access",
        "apply_confirm",
        "email_changed",
        "email_confirm",
        "rejected",
        "welcome",
    ]
    assert all(Path(MAIL_DIR / f"{t}.txt").exists() for t in TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("lang", LANGS)
def test_every_mail_speaks_only_its_recipients_language(idp_app, template, lang):
    from idp.dispatch import mail as mailer
    from idp.models import MailOutbox, School

    row = MailOutbox(template=template, locale=lang, context=CONTEXT)
    school = School(slug="vabakool", name="Vabakool")
    with idp_app.app_context():
        subject, body = mailer._render(idp_app, row, school, "http://127.0.0.1/s/x#token")
    assert subject and GREETING[lang] in body
    assert not leaks(f"{subject}\n{body}", lang, DATA), (template, lang, subject, body)
    if template in ("access", "apply_confirm", "rejected", "welcome"):
        assert "Vabakool" in subject


@pytest.mark.parametrize("template", TEMPLATES)
def test_an_untranslated_mail_would_be_caught(idp_app, template):
    """The check is not blind: the Estonian mail, taken as Russian or English, leaks."""
    from idp.dispatch import mail as mailer
    from idp.models import MailOutbox, School

    row = MailOutbox(template=template, locale="et", context=CONTEXT)
    with idp_app.app_context():
        subject, body = mailer._render(idp_app, row, School(slug="v", name="Vabakool"), "x")
    assert "et" in leaks(body, "ru", DATA) and "et" in leaks(body, "en", DATA)
