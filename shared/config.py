"""Configuration from the environment, with embedded development defaults."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

PRODUCTION = "production"


class ConfigError(RuntimeError):
    """Raised when the configuration is unsafe or incomplete."""


def env_str(name: str, default: str | None = None) -> str | None:
    """Return an environment variable, or the default when unset or empty."""
    value = os.environ.get(name)
    return value if value else default


def env_int(name: str, default: int) -> int:
    """Return an integer environment variable."""
    value = os.environ.get(name)
    return int(value) if value else default


def var_dir() -> Path:
    """Return the directory for embedded development state (SQLite, Redis, dev secrets)."""
    path = Path(env_str("STUUDIUM_VAR_DIR", str(Path.cwd() / "var")) or "var")
    path.mkdir(parents=True, exist_ok=True)
    return path


def dev_secrets() -> dict[str, Any]:
    """Return development secrets, generated once and kept under var/ so restarts keep keys."""
    path = var_dir() / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values))
    tmp.chmod(0o600)
    tmp.replace(path)
    return values


def is_production() -> bool:
    """Tell whether the environment says production."""
    return env_str("STUUDIUM_ENV", "development") == PRODUCTION
