"""Public display data of schools: their logos, for other schools' navigation bars."""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, abort
from sqlalchemy import select

from idp.models import School
from shared.db import get_db

bp = Blueprint("schools", __name__)

ALLOWED = {"image/svg+xml", "image/png", "image/jpeg", "image/gif", "image/webp"}
# An SVG is a document that could carry script: opened by itself (not as an <img>, where no
# script runs), it is sandboxed and may load nothing, as image hosts serve SVG.
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@bp.get("/schools/<slug>/logo")
def logo(slug: str) -> Response:
    """Serve a school's logo (stored as a data URL), sandboxed so that an SVG runs nothing."""
    school = get_db().scalar(
        select(School).where(School.slug == slug[:64], School.status == "active")
    )
    if school is None or not school.logo or not school.logo.startswith("data:"):
        abort(404)
    header, _, data = school.logo.partition(",")
    mime = header[5:].split(";")[0]
    if mime not in ALLOWED or not header.endswith(";base64"):
        abort(404)
    try:
        body = base64.b64decode(data, validate=True)
    except binascii.Error:
        abort(404)
    resp = Response(body, mimetype=mime)
    resp.headers["Cache-Control"] = "public, max-age=3600"
    resp.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    resp.headers["Content-Security-Policy"] = LOGO_POLICY
    return resp
