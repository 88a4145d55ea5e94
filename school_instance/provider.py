"""What a school knows of the IdP: discovery metadata and the JWKS (shared.oidc_rp), and the
checks of our IdP's ID tokens."""

from __future__ import annotations

from typing import Any

from shared.oidc_rp import (
    HTTP,
    ID_TOKEN_ALGS,
    IdTokenInvalid,
    Provider,
    post_token,
    provider,
    verify_jwt,
)
from shared.oidc_rp import validate_id_token as _validate

__all__ = [
    "HTTP",
    "ID_TOKEN_ALGS",
    "IdTokenInvalid",
    "Provider",
    "post_token",
    "provider",
    "validate_id_token",
    "verify_jwt",
]


def validate_id_token(
    prov: Provider, token: str, *, client_id: str, nonce: str | None, leeway: int, timeout: float
) -> dict[str, Any]:
    """OIDC Core §3.1.3.7 as shared.oidc_rp checks it, and our IdP's sid (single logout)."""
    claims = _validate(
        prov, token, client_id=client_id, nonce=nonce, leeway=leeway, timeout=timeout
    )
    if not claims.get("sid"):
        raise IdTokenInvalid("sub/sid")
    return claims
