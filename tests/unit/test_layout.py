"""The house rules a reader relies on, checked on the source tree: short-lived state in Redis
is touched only through the storage contracts (idp/store/, school_instance/sessions.py), and
the school instance never imports the IdP."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A key literal of either app, or a Lua script run by hand, or a raw client or pipeline.
REDIS = re.compile(
    r"""["'](idp|si):[a-z]|\.eval\(|evalsha|register_script|"""
    r"""extensions\[["']redis["']\]|\.pipeline\("""
)
CONTRACTS = {
    "idp": ROOT / "idp" / "store",
    "school_instance": ROOT / "school_instance" / "sessions.py",
}


def _sources(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def _outside(path: Path, contract: Path) -> bool:
    return path != contract and contract not in path.parents


def test_redis_keys_and_scripts_live_only_in_the_storage_contracts() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for package, contract in CONTRACTS.items()
        for path in _sources(package)
        if _outside(path, contract)
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if REDIS.search(line)
    ]
    assert found == []


def test_the_contracts_hold_the_keys_the_grep_looks_for() -> None:
    # The check above is only worth something if it recognises what the contracts contain.
    store = "\n".join(p.read_text() for p in CONTRACTS["idp"].rglob("*.py"))
    school = CONTRACTS["school_instance"].read_text()
    assert REDIS.search(store) and REDIS.search(school)


def test_the_school_instance_never_imports_the_idp() -> None:
    school = ROOT / "school_instance"
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in [*school.rglob("*.py"), *school.rglob("*.mako")]
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*(from idp\b|import idp\b)", line)
    ]
    assert found == []


def test_views_never_commit() -> None:
    # shared/db.py: a unit of work per request; a service commits only at a commit point.
    views = [
        *(ROOT / "idp" / "views").glob("*.py"),
        *(ROOT / "idp" / "admin").glob("*.py"),
        ROOT / "school_instance" / "views.py",
        *(ROOT / "school_instance" / "diary").glob("*.py"),
    ]
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in views
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ".commit()" in line
    ]
    assert found == []
