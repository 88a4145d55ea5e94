"""IdP configuration: defaults, then the environment; production refuses unsafe defaults."""

from __future__ import annotations

import json
from typing import Any

from shared.config import ConfigError, dev_secrets, env_int, env_str, is_production, var_dir

# The stand-in's client registration (deploy/dev/eid_standin.py): development only.
DEV_EID_CLIENT_ID = "stuudium-id-dev"
DEV_EID_CLIENT_SECRET = "arenduskeskkond-mitte-toodangus-kasutamiseks"


def load_config() -> dict[str, Any]:
    """Build the IdP configuration from the environment."""
    production = is_production()
    config: dict[str, Any] = {
        "STUUDIUM_ENV": env_str("STUUDIUM_ENV", "development"),
        "ISSUER": (env_str("IDP_ISSUER", "http://localhost:5000") or "").rstrip("/"),
        "DATABASE_URL": env_str("DATABASE_URL"),
        "REDIS_URL": env_str("REDIS_URL"),
        "SECRET_KEY": env_str("IDP_SECRET_KEY"),
        "KEY_ENCRYPTION_KEYS": env_str("IDP_KEY_ENCRYPTION_KEYS"),
        "SESSION_IDLE_SECONDS": env_int("IDP_SESSION_IDLE_SECONDS", 15 * 60),
        "SESSION_MAX_SECONDS": env_int("IDP_SESSION_MAX_SECONDS", 12 * 3600),
        # last_seen in SQL is stamped at most once a step of use (a Redis miss reads it).
        "SESSION_SEEN_STEP_SECONDS": env_int("IDP_SESSION_SEEN_STEP_SECONDS", 60),
        "CODE_TTL_SECONDS": env_int("IDP_CODE_TTL_SECONDS", 60),
        "ACCESS_TOKEN_TTL_SECONDS": env_int("IDP_ACCESS_TOKEN_TTL_SECONDS", 300),
        "ID_TOKEN_TTL_SECONDS": env_int("IDP_ID_TOKEN_TTL_SECONDS", 600),
        "INTERACTION_TTL_SECONDS": env_int("IDP_INTERACTION_TTL_SECONDS", 900),
        "LINK_ATTEMPT_SECONDS": env_int("IDP_LINK_ATTEMPT_SECONDS", 600),
        "LINK_SECONDS": {
            "access": env_int("IDP_ACCESS_LINK_SECONDS", 15 * 60),
            "confirm": env_int("IDP_CONFIRM_LINK_SECONDS", 24 * 3600),
            "welcome": env_int("IDP_WELCOME_LINK_SECONDS", 7 * 24 * 3600),
            "email": env_int("IDP_EMAIL_LINK_SECONDS", 24 * 3600),
        },
        "LINK_MAX_REQUESTS": env_int("IDP_LINK_MAX_REQUESTS", 20),
        "SMTP_URL": env_str("SMTP_URL", "smtp://localhost:1025"),
        "MAIL_FROM": env_str("MAIL_FROM", "Stuudium ID <noreply@stuudium.localhost>"),
        "KEY_CACHE_SECONDS": env_int("IDP_KEY_CACHE_SECONDS", 30),
        "CLIENT_CACHE_SECONDS": env_int("IDP_CLIENT_CACHE_SECONDS", 10),
        "KEY_RETIRE_AFTER_SECONDS": env_int("IDP_KEY_RETIRE_AFTER_SECONDS", 24 * 3600),
        "PASSWORD_MIN_LENGTH": env_int("IDP_PASSWORD_MIN_LENGTH", 10),
        "ARGON2_MAX_CONCURRENCY": env_int("IDP_ARGON2_MAX_CONCURRENCY", 2),
        "LOGIN_MAX_FAILURES": env_int("IDP_LOGIN_MAX_FAILURES", 10),
        "LOGIN_MAX_FAILURES_PER_ADDRESS": env_int("IDP_LOGIN_MAX_FAILURES_PER_ADDRESS", 100),
        "LOGIN_FAILURE_WINDOW_SECONDS": env_int("IDP_LOGIN_FAILURE_WINDOW_SECONDS", 900),
        # Coarse limit on the forms a person posts, per client address (store/limits): far
        # above any person's pace; the exact failure counters stay the real brute-force guard.
        "FORM_RATE_LIMIT": env_str("IDP_FORM_RATE_LIMIT", "120 per minute"),
        "BACKCHANNEL_TIMEOUT_SECONDS": float(env_str("IDP_BACKCHANNEL_TIMEOUT", "0.5") or 0.5),
        "DELIVERY_TIMEOUT_SECONDS": float(env_str("IDP_DELIVERY_TIMEOUT", "2.5") or 2.5),
        "DELIVERY_BACKOFF_SECONDS": env_int("IDP_DELIVERY_BACKOFF_SECONDS", 5),
        "DELIVERY_BACKOFF_MAX_SECONDS": env_int("IDP_DELIVERY_BACKOFF_MAX_SECONDS", 600),
        "DELIVERY_GIVE_UP_SECONDS": env_int("IDP_DELIVERY_GIVE_UP_SECONDS", 24 * 3600),
        "DELIVERY_LEASE_SECONDS": env_int("IDP_DELIVERY_LEASE_SECONDS", 30),
        "WORKER_POLL_SECONDS": float(env_str("IDP_WORKER_POLL_SECONDS", "1") or 1),
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "MAX_QUERY_LENGTH": 8 * 1024,
        "SESSION_COOKIE_NAME": "stuudium_idp_ui",
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "SSO_COOKIE_NAME": "stuudium_idp_sso",
        "JSON_SORT_KEYS": False,
        # The upstream eID provider (TARA's profile); development defaults: the stand-in.
        "EID_ISSUER": (
            env_str("EID_ISSUER", None if production else "http://localhost:5009") or ""
        ).rstrip("/"),
        "EID_CLIENT_ID": env_str("EID_CLIENT_ID", None if production else DEV_EID_CLIENT_ID),
        "EID_CLIENT_SECRET": env_str(
            "EID_CLIENT_SECRET", None if production else DEV_EID_CLIENT_SECRET
        ),
        "EID_REDIRECT_URI": env_str("EID_REDIRECT_URI"),
        "EID_TIMEOUT_SECONDS": float(env_str("EID_TIMEOUT", "5") or 5),
        "EID_CLOCK_SKEW_SECONDS": env_int("EID_CLOCK_SKEW_SECONDS", 10),
        # {"school-slug": {"teacher": "substantial", "exempt": ["<account sub>", ...]}}
        "MIN_ACR": json.loads(env_str("IDP_MIN_ACR", "{}") or "{}"),
    }
    if production:
        missing = [
            k
            for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "KEY_ENCRYPTION_KEYS")
            if not config[k]
        ]
        if missing:
            raise ConfigError(
                "production refuses to start without: "
                + ", ".join(
                    {
                        "SECRET_KEY": "IDP_SECRET_KEY",
                        "KEY_ENCRYPTION_KEYS": "IDP_KEY_ENCRYPTION_KEYS",
                    }.get(k, k)
                    for k in missing
                )
            )
        if not config["ISSUER"].startswith("https://"):
            raise ConfigError("production needs an https IDP_ISSUER")
        if len(config["SECRET_KEY"]) < 32:
            raise ConfigError("IDP_SECRET_KEY must be at least 32 characters")
        config["SESSION_COOKIE_SECURE"] = True
    else:
        secrets = dev_secrets()
        config["SECRET_KEY"] = config["SECRET_KEY"] or secrets["SECRET_KEY"]
        config["KEY_ENCRYPTION_KEYS"] = (
            config["KEY_ENCRYPTION_KEYS"] or secrets["KEY_ENCRYPTION_KEYS"]
        )
        config["DATABASE_URL"] = config["DATABASE_URL"] or f"sqlite:///{var_dir() / 'idp.db'}"
    if (
        production
        and config["EID_ISSUER"]
        and not (
            config["EID_ISSUER"].startswith("https://")
            and config["EID_CLIENT_ID"]
            and config["EID_CLIENT_SECRET"]
        )
    ):
        raise ConfigError("eID needs an https EID_ISSUER, EID_CLIENT_ID and EID_CLIENT_SECRET")
    if config["ISSUER"].startswith("https://"):
        config["SSO_COOKIE_NAME"] = "__Host-stuudium_idp_sso"
        config["SESSION_COOKIE_NAME"] = "__Host-stuudium_idp_ui"
        config["SESSION_COOKIE_SECURE"] = True
    return config
