"""Signing keys: encrypted at rest (MultiFernet), rotated next → active → retiring."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, MultiFernet
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import SigningKey, utcnow

ALGORITHMS = ("RS256", "ES256")


def key_encryption(secrets_csv: str) -> MultiFernet:
    """Return the cipher for private keys: encrypt with the first secret, decrypt with any."""
    return MultiFernet([Fernet(s.strip().encode()) for s in secrets_csv.split(",") if s.strip()])


def _generate(alg: str) -> RSAKey | ECKey:
    if alg == "RS256":
        return RSAKey.generate_key(2048, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    raise ValueError(f"unsupported algorithm {alg}")


def create_key(db: Session, cipher: MultiFernet, alg: str, state: str) -> SigningKey:
    """Generate a key of alg, store it encrypted, and return the row."""
    key = _generate(alg)
    kid = f"{alg.lower()}-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    public = key.as_dict(private=False)
    public.update({"kid": kid, "alg": alg, "use": "sig"})
    row = SigningKey(
        kid=kid,
        alg=alg,
        state=state,
        private_encrypted=cipher.encrypt(key.as_pem(private=True)),
        public_jwk=public,
        activated_at=utcnow() if state == "active" else None,
    )
    db.add(row)
    db.flush()
    return row


def ensure_keys(db: Session, cipher: MultiFernet) -> None:
    """Make sure every algorithm has an active key and a published next key."""
    rows = db.scalars(select(SigningKey).where(SigningKey.state.in_(("active", "next")))).all()
    for alg in ALGORITHMS:
        states = {r.state for r in rows if r.alg == alg}
        if "active" not in states:
            create_key(db, cipher, alg, "active")
        if "next" not in states:
            create_key(db, cipher, alg, "next")


def rotate(db: Session, cipher: MultiFernet, retire_after_seconds: int) -> list[SigningKey]:
    """Promote each algorithm's published next key to active; the old one keeps verifying."""
    now = utcnow()
    ensure_keys(db, cipher)
    promoted = []
    for alg in ALGORITHMS:
        rows = db.scalars(select(SigningKey).where(SigningKey.alg == alg)).all()
        for row in rows:
            if (
                row.state == "retiring"
                and row.retiring_at
                and ((now - row.retiring_at).total_seconds() > retire_after_seconds)
            ):
                row.state = "retired"
            elif row.state == "active":
                row.state = "retiring"
                row.retiring_at = now
        for row in rows:
            if row.state == "next":
                row.state = "active"
                row.activated_at = now
                promoted.append(row)
        create_key(db, cipher, alg, "next")
    db.flush()
    return promoted


@dataclass(frozen=True)
class KeyRing:
    """The keys a process signs and verifies with, loaded from the database."""

    signing: dict[str, RSAKey | ECKey]
    public: KeySet
    jwks: dict[str, Any]
    loaded_at: float


class KeyStore:
    """Caches the key ring per process for a short time so every token is not a DB read."""

    def __init__(self, cipher: MultiFernet, cache_seconds: int) -> None:
        self._cipher = cipher
        self._cache_seconds = cache_seconds
        self._ring: KeyRing | None = None
        self._lock = threading.Lock()
        # Imported private keys by kid: a reload re-reads which keys are in which state, but
        # decrypting and importing a key (an RSA consistency check costs milliseconds) happens
        # once per key and process.
        self._imported: dict[str, RSAKey | ECKey] = {}

    def ring(self, db: Session | Callable[[], Session]) -> KeyRing:
        """Return the current key ring, reloading it when stale (from db, or the session it
        gives: a request that finds the ring fresh then opens none)."""
        ring = self._ring
        if ring is not None and time.monotonic() - ring.loaded_at < self._cache_seconds:
            return ring
        with self._lock:
            ring = self._load(db if isinstance(db, Session) else db())
            self._ring = ring
            return ring

    def invalidate(self) -> None:
        """Forget the cached ring (after a rotation in this process)."""
        self._ring = None

    def _load(self, db: Session) -> KeyRing:
        rows = db.scalars(
            select(SigningKey)
            .where(SigningKey.state.in_(("next", "active", "retiring")))
            .order_by(SigningKey.id)
        ).all()
        signing: dict[str, RSAKey | ECKey] = {}
        for row in rows:
            if row.state == "active":
                key = self._imported.get(row.kid)
                if key is None:
                    pem = self._cipher.decrypt(row.private_encrypted)
                    cls = RSAKey if row.alg == "RS256" else ECKey
                    key = cls.import_key(pem, {"kid": row.kid, "alg": row.alg, "use": "sig"})
                    self._imported[row.kid] = key
                signing[row.alg] = key
        publics = [dict(r.public_jwk) for r in rows]
        return KeyRing(
            signing=signing,
            public=KeySet.import_key_set({"keys": publics}),
            jwks={"keys": publics},
            loaded_at=time.monotonic(),
        )
