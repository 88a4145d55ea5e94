"""Configuration: safe development defaults, production refuses unsafe ones."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from idp.config import load_config
from shared.config import ConfigError


def test_production_refuses_to_start_without_secrets(monkeypatch):
    for name in ("IDP_SECRET_KEY", "IDP_KEY_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STUUDIUM_ENV", "production")
    monkeypatch.setenv("IDP_ISSUER", "https://id.example.ee")
    with pytest.raises(ConfigError) as exc:
        load_config()
    for name in ("IDP_SECRET_KEY", "IDP_KEY_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL"):
        assert name in str(exc.value)


def test_production_refuses_plain_http_issuer(monkeypatch):
    monkeypatch.setenv("STUUDIUM_ENV", "production")
    monkeypatch.setenv("IDP_ISSUER", "http://id.example.ee")
    monkeypatch.setenv("IDP_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("IDP_KEY_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/idp")
    monkeypatch.setenv("REDIS_URL", "redis://cache/0")
    with pytest.raises(ConfigError, match="https"):
        load_config()


def test_production_with_secrets_uses_secure_host_cookies(monkeypatch):
    monkeypatch.setenv("STUUDIUM_ENV", "production")
    monkeypatch.setenv("IDP_ISSUER", "https://id.example.ee")
    monkeypatch.setenv("IDP_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("IDP_KEY_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/idp")
    monkeypatch.setenv("REDIS_URL", "redis://cache/0")
    config = load_config()
    assert config["SSO_COOKIE_NAME"].startswith("__Host-")
    assert config["SESSION_COOKIE_SECURE"] is True


def test_development_generates_and_keeps_its_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("STUUDIUM_ENV", "development")
    monkeypatch.setenv("STUUDIUM_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("IDP_SECRET_KEY", raising=False)
    monkeypatch.delenv("IDP_KEY_ENCRYPTION_KEYS", raising=False)
    first, second = load_config(), load_config()
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 32
    assert first["KEY_ENCRYPTION_KEYS"] == second["KEY_ENCRYPTION_KEYS"]
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0
