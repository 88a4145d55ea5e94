"""School instance configuration from the environment, with development defaults."""

from __future__ import annotations

from typing import Any

from shared.config import ConfigError, dev_secrets, env_int, env_str, is_production, var_dir


def load_config() -> dict[str, Any]:
    """Build the configuration."""
    config: dict[str, Any] = {
        "STUUDIUM_ENV": env_str("STUUDIUM_ENV", "development"),
        "DATABASE_URL": env_str("SCHOOL_DATABASE_URL") or env_str("DATABASE_URL"),
        "REDIS_URL": env_str("REDIS_URL"),
        "SECRET_KEY": env_str("SCHOOL_SECRET_KEY"),
        "SESSION_MAX_SECONDS": env_int("SCHOOL_SESSION_MAX_SECONDS", 12 * 3600),
        "REFRESH_MARGIN_SECONDS": env_int("SCHOOL_REFRESH_MARGIN_SECONDS", 60),
        "OAUTH_STATE_TTL_SECONDS": env_int("SCHOOL_OAUTH_STATE_TTL_SECONDS", 600),
        "TENANT_CACHE_SECONDS": env_int("SCHOOL_TENANT_CACHE_SECONDS", 30),
        "IDP_TIMEOUT_SECONDS": float(env_str("SCHOOL_IDP_TIMEOUT", "5") or 5),
        "ID_TOKEN_LEEWAY_SECONDS": env_int("SCHOOL_ID_TOKEN_LEEWAY_SECONDS", 30),
        "MAX_CONTENT_LENGTH": 256 * 1024,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
    }
    if is_production():
        missing = [
            name
            for key, name in (
                ("DATABASE_URL", "SCHOOL_DATABASE_URL"),
                ("REDIS_URL", "REDIS_URL"),
                ("SECRET_KEY", "SCHOOL_SECRET_KEY"),
            )
            if not config[key]
        ]
        if missing:
            raise ConfigError("production refuses to start without: " + ", ".join(missing))
        config["SESSION_COOKIE_SECURE"] = True
    else:
        config["SECRET_KEY"] = config["SECRET_KEY"] or dev_secrets()["SECRET_KEY"] + "-school"
        config["DATABASE_URL"] = config["DATABASE_URL"] or f"sqlite:///{var_dir() / 'school.db'}"
    return config
