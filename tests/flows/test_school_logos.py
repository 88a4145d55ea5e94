"""A school's logo as the IdP serves it to other schools' bars: SVG and raster images from the
stored data URL, an SVG sandboxed so that opening it by itself runs nothing; anything else not
at all."""

from __future__ import annotations

import base64

import requests
from flask import Flask
from sqlalchemy import select

from deploy.dev.seed import logo_data_url

SCRIPTED_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><script>alert(1)</script>'
    b'<rect width="8" height="8"/></svg>'
)


def _set_logo(idp_app: Flask, slug: str, logo: str) -> None:
    from idp.models import School
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        school = db.scalar(select(School).where(School.slug == slug))
        assert school is not None
        school.logo = logo
        db.commit()


def test_an_svg_logo_is_served_sandboxed(idp, idp_app, make_school) -> None:
    school = make_school()
    _set_logo(idp_app, school.slug, logo_data_url("laagri-kool"))
    got = requests.get(f"{idp}/schools/{school.slug}/logo", timeout=10)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("image/svg+xml")
    assert got.content.startswith(b"<svg") and b"<title>Laagri Kool</title>" in got.content
    policy = got.headers["Content-Security-Policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Cross-Origin-Resource-Policy"] == "cross-origin"  # other schools' bars

    # An SVG with a script in it: served as the image it is, under the same sandbox.
    scripted = "data:image/svg+xml;base64," + base64.b64encode(SCRIPTED_SVG).decode()
    _set_logo(idp_app, school.slug, scripted)
    got = requests.get(f"{idp}/schools/{school.slug}/logo", timeout=10)
    assert got.status_code == 200 and "sandbox" in got.headers["Content-Security-Policy"]


def test_only_images_are_served(idp, idp_app, make_school) -> None:
    school = make_school()
    page = "data:text/html;base64," + base64.b64encode(b"<script>alert(1)</script>").decode()
    _set_logo(idp_app, school.slug, page)
    assert requests.get(f"{idp}/schools/{school.slug}/logo", timeout=10).status_code == 404
    _set_logo(idp_app, school.slug, "data:image/png;base64,not base64!")
    assert requests.get(f"{idp}/schools/{school.slug}/logo", timeout=10).status_code == 404
    assert requests.get(f"{idp}/schools/no-such-school/logo", timeout=10).status_code == 404
