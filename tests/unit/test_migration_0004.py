"""Migration 0004 on a database holding round-one data: a code typed in an application stops
being an anchor, codes the school recorded stay anchors, and the unused login and e-mail links
(which recorded no address) are voided. On SQLite, and on PostgreSQL when DATABASE_URL is one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine, make_url

import idp

MIGRATIONS = Path(idp.__file__).parent / "migrations"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of each kind (PostgreSQL when DATABASE_URL points at one, as in CI)."""
    if request.param == "sqlite":
        yield sa.create_engine(f"sqlite:///{tmp_path / 'round_one.db'}")
        return
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("PostgreSQL runs when DATABASE_URL points at it (make test in CI does)")
    name = f"stuudium_mig_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    created = sa.create_engine(make_url(url).set(database=name))
    try:
        yield created
    finally:
        created.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _migrate(engine: Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, revision)


ROUND_ONE = [
    "INSERT INTO school (id, slug, name, base_url, default_locale, status, created_at) VALUES "
    "(1, 'huvikool', 'Huvikool', 'https://h.example', 'et', 'active', :now)",
    # 1: approved applicant whose typed code was stored as the school's; 2: recorded by the
    # school; 3: an applicant an eID login later marked (without proof it was theirs);
    # 4: a code with no recorded source.
    *[
        f"INSERT INTO person (id, given_name, family_name, isikukood, isikukood_source, email, "
        f"email_verified, locale, version, created_at, updated_at) VALUES ({i}, 'P', 'Q', "
        f"'{code}', {source}, 'p{i}@example.ee', true, 'et', {i}, :now, :now)"
        for i, code, source in [
            (1, "38001085718", "'school'"),
            (2, "48207152749", "'school'"),
            (3, "39912310174", "'eid'"),
            (4, "50001010006", "NULL"),
        ]
    ],
    *[
        f"INSERT INTO account (id, person_id, school_id, sub, roles, login_email, status, "
        f"created_at) VALUES ({i}, {i}, 1, 'sub{i}', '[\"parent\"]', 'p{i}@example.ee', "
        f"'active', :now)"
        for i in range(1, 5)
    ],
    *[
        f"INSERT INTO application (id, school_id, email, child_isikukood, data, status, "
        f"created_at, locale, account_id) VALUES ({i}, 1, 'p{i}@example.ee', '51107121760', "
        f"'{{\"isikukood\": \"{code}\"}}', 'approved', :now, 'et', {i})"
        for i, code in [(1, "38001085718"), (3, "39912310174")]
    ],
    "INSERT INTO one_time_link (token_hash, purpose, subject, school_id, data, created_at, "
    "expires_at) VALUES ('a', 'welcome', 'account:1', 1, '{}', :now, :later), "
    "('b', 'confirm', 'application:9', 1, '{}', :now, :later)",
]


def test_round_one_data_gets_safe_provenance(engine: Engine) -> None:
    _migrate(engine, "0003")
    with engine.begin() as conn:
        for statement in ROUND_ONE:
            conn.execute(
                sa.text(statement), {"now": "2026-11-30 10:00:00", "later": "2099-01-01 00:00:00"}
            )
    _migrate(engine, "head")
    with engine.connect() as conn:
        sources: dict[int, str] = dict(
            conn.execute(sa.text("SELECT id, isikukood_source FROM person")).all()
        )
        links: dict[str, bool] = dict(
            conn.execute(sa.text("SELECT token_hash, used_at IS NULL FROM one_time_link")).all()
        )
        columns = {c["name"] for c in sa.inspect(conn).get_columns("one_time_link")}
    assert sources == {1: "applicant", 2: "school", 3: "applicant", 4: "applicant"}
    assert links == {"a": False, "b": True}  # the welcome link voided, the confirmation kept
    assert "sent_to" in columns


def test_only_eid_and_school_codes_are_anchors_and_a_merge_keeps_the_stronger() -> None:
    from idp.people import proofing

    assert [proofing.is_anchor(s) for s in ("eid", "school", "applicant", None)] == [
        True,
        True,
        False,
        False,
    ]
    assert proofing.stronger("applicant", "school") == "school"
    assert proofing.stronger("eid", "school") == "eid"
    assert proofing.stronger(None, "applicant") == "applicant"
