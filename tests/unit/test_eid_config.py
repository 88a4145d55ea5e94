"""eID configuration: the stand-in in development, the real TARA only by configuration."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from idp.config import DEV_EID_CLIENT_SECRET, load_config
from shared.config import ConfigError


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A production environment with the IdP's own secrets set."""
    for name in ("EID_ISSUER", "EID_CLIENT_ID", "EID_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STUUDIUM_ENV", "production")
    monkeypatch.setenv("IDP_ISSUER", "https://id.example.ee")
    monkeypatch.setenv("IDP_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("IDP_KEY_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/idp")
    monkeypatch.setenv("REDIS_URL", "redis://cache/0")
    return monkeypatch


def test_development_points_at_the_standin(monkeypatch):
    for name in ("STUUDIUM_ENV", "EID_ISSUER", "EID_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    config = load_config()
    assert config["EID_ISSUER"] == "http://localhost:5009"
    assert config["EID_CLIENT_SECRET"] == DEV_EID_CLIENT_SECRET


def test_production_has_no_eid_and_no_standin_secret_unless_configured(production):
    config = load_config()
    assert not config["EID_ISSUER"] and not config["EID_CLIENT_SECRET"]


def test_production_refuses_an_http_or_incomplete_upstream(production):
    production.setenv("EID_ISSUER", "http://tara.example.ee")
    production.setenv("EID_CLIENT_ID", "stuudium")
    production.setenv("EID_CLIENT_SECRET", "s" * 40)
    with pytest.raises(ConfigError, match="EID_ISSUER"):
        load_config()
    production.setenv("EID_ISSUER", "https://tara.ria.ee")
    production.delenv("EID_CLIENT_SECRET")
    with pytest.raises(ConfigError, match="EID_CLIENT_SECRET"):
        load_config()
    production.setenv("EID_CLIENT_SECRET", "s" * 40)
    assert load_config()["EID_ISSUER"] == "https://tara.ria.ee"
