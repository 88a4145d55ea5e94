"""Demo schools and people for `make run`; idempotent, so restarts keep what exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from idp.accounts import create_account, hash_password
from idp.models import Account, Person, School
from idp.schools import add_school
from shared.db import get_db

DEMO_SCHOOLS = [
    ("laagri-kool", "Laagri Kool", 5001),
    ("laagri-huvialakool", "Laagri Huvialakool", 5002),
    ("laagri-lasteaed", "Laagri Lasteaed", 5003),
]
LOGO_COLOURS = {"laagri-kool": (11, 107, 203), "laagri-huvialakool": (214, 120, 20),
                "laagri-lasteaed": (46, 139, 87)}


def logo_png(rgb: tuple[int, int, int], size: int = 64) -> str:
    """A round logo of one colour, as a PNG data URL (no image library needed)."""
    import base64
    import struct
    import zlib

    rows = b""
    r2 = (size / 2) ** 2
    for y in range(size):
        row = b"\x00"
        for x in range(size):
            inside = (x - size / 2 + 0.5) ** 2 + (y - size / 2 + 0.5) ** 2 <= r2
            row += bytes((*rgb, 255)) if inside else b"\x00\x00\x00\x00"
        rows += row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()
DEMO_PASSWORD = "Kevadine-Laagri-2026"

# (e-mail, given, family, isikukood, [(school, roles)], linked)
DEMO_PEOPLE: list[tuple[str, str, str, str, list[tuple[str, list[str]]], bool]] = [
    ("opetaja@laagri.demo", "Tiina", "Õunapuu", "48504120238",
     [("laagri-kool", ["teacher"]), ("laagri-lasteaed", ["parent"])], True),
    ("lapsevanem@laagri.demo", "Jüri", "Mägi", "38001085718",
     [("laagri-kool", ["parent"]), ("laagri-huvialakool", ["parent"])], False),
    ("admin@laagri.demo", "Kaja", "Kask", "47303030226", [("laagri-kool", ["admin", "staff"]),
                                                          ("laagri-huvialakool", ["admin"]),
                                                          ("laagri-lasteaed", ["admin"])], True),
]


def seed(app: Flask, state_file: Path) -> dict[str, Any]:
    """Register the demo schools and people once; return the schools' client credentials."""
    known: dict[str, Any] = json.loads(state_file.read_text()) if state_file.exists() else {}
    with app.app_context():
        db = get_db()
        for slug, name, port in DEMO_SCHOOLS:
            if db.scalar(select(School).where(School.slug == slug)) is None:
                issued = add_school(db, slug, name, f"http://localhost:{port}", development=True,
                                    logo=logo_png(LOGO_COLOURS[slug]))
                known[slug] = {"name": name, "url": f"http://localhost:{port}",
                               "client_id": issued.client.client_id,
                               "client_secret": issued.secret}
        db.flush()
        schools = {s.slug: s for s in db.scalars(select(School))}
        for email, given, family, code, memberships, linked in DEMO_PEOPLE:
            if db.scalar(select(Account).where(Account.login_email == email)) is not None:
                continue
            person: Person | None = None
            for slug, roles in memberships:
                school = schools[slug]
                if person is None or not linked:
                    account = create_account(db, school.id, email=email, given_name=given,
                                             family_name=family, roles=roles, isikukood=code,
                                             password=DEMO_PASSWORD)
                    person = account.person
                else:
                    db.add(Account(person_id=person.id, school_id=school.id,
                                   sub=_sub(), roles=roles, login_email=email))
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
        add_tenant(school_app, slug=slug, name=name, url=f"http://localhost:{port}",
                   issuer=issuer, client_id=creds["client_id"],
                   client_secret=creds["client_secret"], hosts=[f"localhost:{port}"])
