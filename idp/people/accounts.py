"""Passwords (argon2id), login by e-mail at a school, and brute-force counters."""

from __future__ import annotations

import secrets
import threading
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import Row, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, contains_eager

from idp.models import Account, Person, VersionCounter
from idp.people import proofing
from idp.store import Batch, counters
from shared import isikukood as ik
from shared.db import separate_transaction

# OWASP's argon2id baseline: m=19 MiB, t=2, p=1. Argon2 takes the whole password (no 72-byte
# cut as in bcrypt); a cap well above any passphrase keeps hashing bounded.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MAX_PASSWORD_LENGTH = 1024
_DUMMY_HASH = HASHER.hash("a password nobody has, for equal timing")
_ARGON2_SLOTS: threading.BoundedSemaphore | None = None


def hash_password(password: str) -> str:
    """Return the argon2id hash of a password."""
    return HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Verify a password in a bounded number of concurrent argon2 computations."""
    global _ARGON2_SLOTS
    if _ARGON2_SLOTS is None:
        _ARGON2_SLOTS = threading.BoundedSemaphore(current_app.config["ARGON2_MAX_CONCURRENCY"])
    with _ARGON2_SLOTS:
        try:
            return HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False


def find_login_account(db: Session, school_id: int, email: str) -> Account | None:
    """Return the active account whose login e-mail at this school is email."""
    # contains_eager: the joined person (its password hash) comes in the same round trip.
    return db.scalar(
        select(Account)
        .join(Person)
        .options(contains_eager(Account.person))
        .where(
            Account.school_id == school_id,
            Account.login_email == email.strip().lower(),
            Account.status == "active",
        )
    )


# The login's one query, built once: the account's ids and its person's password hash.
# Plain table columns run on the connection: the ORM's statement machinery costs more CPU than
# the query itself. No lock: the session is stored only while the hash is still this one
# (sessions.create), so the login holds no row through its argon2 time.
_ACCOUNT = cast(Table, Account.__table__)
_PERSON = cast(Table, Person.__table__)
_LOGIN_ROW = (
    select(_ACCOUNT.c.id, _ACCOUNT.c.person_id, _PERSON.c.password_hash)
    .select_from(_ACCOUNT)
    .join(_PERSON, _PERSON.c.id == _ACCOUNT.c.person_id)
    .where(
        _ACCOUNT.c.school_id == bindparam("school_id"),
        _ACCOUNT.c.login_email == bindparam("email"),
        _ACCOUNT.c.status == "active",
    )
)


def authenticate(
    db: Session,
    school_id: int,
    email: str,
    password: str,
    address: str,
    refund: Batch | None = None,
) -> Row[int, int, str | None] | None:
    """Return the account (id, person_id) if the password is right; wrong, unknown and locked
    look alike. The refund of the counted failure is queued on refund when given (the caller
    executes it), else sent at once."""
    email_key = email.strip().lower()[:320]
    counted = counters.login(school_id, email_key, address)
    cfg = current_app.config
    locked = counters.over_limit(
        counted,
        [cfg["LOGIN_MAX_FAILURES"], cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]],
        cfg["LOGIN_FAILURE_WINDOW_SECONDS"],
        "login",
    )
    account = (
        db.connection().execute(_LOGIN_ROW, {"school_id": school_id, "email": email_key}).first()
    )
    if len(password) > MAX_PASSWORD_LENGTH:
        return None  # longer than any password we accept: wrong, and not worth hashing
    if locked:
        verify_password(None, password)
        return None
    ok = verify_password(account.password_hash if account else None, password)
    if not ok or account is None:
        return None
    counters.refund(counted, refund)
    return account


def upgrade_hash(account: Row[int, int, str | None], password: str) -> None:
    """After a login: when the hashing parameters changed since the person's hash was made,
    store one made with the current ones, unless the hash changed meanwhile. After the login's
    commit: its session is stored only while the hash is the one it verified."""
    if account.password_hash and HASHER.check_needs_rehash(account.password_hash):
        with separate_transaction() as db:
            db.execute(
                update(_PERSON)
                .where(
                    _PERSON.c.id == account.person_id,
                    _PERSON.c.password_hash == account.password_hash,
                )
                .values(password_hash=hash_password(password))
            )


class AccountError(ValueError):
    """An account that cannot be created as asked."""


class IsikukoodTaken(AccountError):
    """Another active account at the school has this personal code (unique there)."""


ROLES = ("parent", "teacher", "student", "admin", "staff")


def next_version(db: Session) -> int:
    """Draw the next person version from the one global sequence."""
    return int(db.execute(insert(VersionCounter).returning(VersionCounter.id)).scalar_one())


def create_account(
    db: Session,
    school_id: int,
    *,
    email: str,
    given_name: str,
    family_name: str,
    roles: list[str],
    isikukood: str | None = None,
    isikukood_source: str = proofing.SCHOOL,
    password: str | None = None,
) -> Account:
    """Create a new person with one account at a school (never merged with anyone by e-mail);
    a code keeps its provenance and must be unique among the school's active accounts."""
    email_norm = email.strip().lower()
    if "@" not in email_norm or len(email_norm) > 320:
        raise AccountError("not an e-mail address")
    if find_login_account(db, school_id, email_norm) is not None:
        raise AccountError("an active account with this e-mail exists at this school")
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise AccountError(f"roles must be among {', '.join(ROLES)}")
    birth = None
    if isikukood:
        if not ik.is_valid(isikukood):
            raise AccountError("isikukood is not valid")
        if proofing.code_taken(db, school_id, isikukood):
            raise IsikukoodTaken("an active account with this isikukood exists at this school")
        birth = ik.birth_date(isikukood)
    if password is not None and len(password) < current_app.config["PASSWORD_MIN_LENGTH"]:
        raise AccountError("password too short")
    person = Person(
        given_name=given_name.strip(),
        family_name=family_name.strip(),
        isikukood=isikukood or None,
        isikukood_source=isikukood_source if isikukood else None,
        birth_date=birth,
        email=email.strip(),
        version=next_version(db),
        password_hash=hash_password(password) if password else None,
    )
    db.add(person)
    db.flush()
    account = Account(
        person_id=person.id,
        school_id=school_id,
        sub=secrets.token_urlsafe(24),
        roles=sorted(set(roles)),
        login_email=email_norm,
    )
    db.add(account)
    db.flush()
    return account
