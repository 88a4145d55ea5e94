"""Authlib's authorization server, configured for this design; revocation and introspection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask
from sqlalchemy import select

from idp.models import Account, Client, RefreshToken, SsoSession, utcnow
from idp.oidc.client_credentials import ClientCredentialsGrant
from idp.oidc.clients import RelyingParty, find_client
from idp.oidc.grants import AuthorizationCodeGrant, RefreshTokenGrant
from idp.oidc.resource import check_access_token, client_token_claims
from idp.oidc.revocation import revoke_grant
from idp.store.grants import deny_access_token
from shared.db import get_db
from shared.security import sha256_hex


@dataclass(frozen=True)
class PresentedToken:
    """A token presented to revocation or introspection, already identified."""

    kind: str
    client_id: str
    claims: dict[str, Any]

    def check_client(self, client: RelyingParty) -> bool:
        """Tell whether the token was issued to this client."""
        return client.client_id == self.client_id


def identify_token(token: str) -> PresentedToken | None:
    """Find a token by its form: a live access token JWT, or a stored refresh token."""
    if not token or len(token) > 8192:
        return None
    if token.count(".") == 2:
        claims = check_access_token(token)
        if claims is None:  # a school client's own token for the admin API
            found = client_token_claims(token)
            claims = found[0] if found else None
        return PresentedToken("access_token", claims["client_id"], claims) if claims else None
    db = get_db()
    row = db.execute(
        select(RefreshToken, Client.client_id, SsoSession.ended_at, Account.sub)
        .join(Client, Client.id == RefreshToken.client_id)
        .join(Account, Account.id == RefreshToken.account_id)
        .join(SsoSession, SsoSession.id == RefreshToken.session_id)
        .where(RefreshToken.token_hash == sha256_hex(token))
    ).first()
    if row is None:
        return None
    refresh, client_id, ended_at, sub = row
    active = (
        refresh.used_at is None
        and refresh.revoked_at is None
        and ended_at is None
        and refresh.expires_at > utcnow()
    )
    return PresentedToken(
        "refresh_token",
        client_id,
        {
            "active": active,
            "grant_id": refresh.grant_id,
            "scope": refresh.scope,
            "exp": int(refresh.expires_at.timestamp()),
            "iat": int(refresh.created_at.timestamp()),
            "sid": refresh.session_id,
            "sub": sub,
        },
    )


class Revocation(RevocationEndpoint):
    """RFC 7009: a refresh token revokes its grant; an access token is deny-listed."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        """Identify the token whatever the hint says (the hint is only an optimisation)."""
        return identify_token(token_string)

    def revoke_token(self, token: PresentedToken, request: Any) -> None:
        """Revoke the token (and for a refresh token, everything of its grant)."""
        if token.kind == "access_token":
            deny_access_token(token.claims["jti"], token.claims["exp"])
        else:
            revoke_grant(token.claims["grant_id"])


class Introspection(IntrospectionEndpoint):
    """RFC 7662, answering a school only about its own tokens."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        """Identify the token."""
        return identify_token(token_string)

    def check_permission(self, token: PresentedToken, client: RelyingParty, request: Any) -> bool:
        """Only the client the token was issued to may introspect it."""
        return token.check_client(client)

    def introspect_token(self, token: PresentedToken) -> dict[str, Any]:
        """Describe an active token."""
        c = token.claims
        if token.kind == "access_token":
            answer = {
                "active": True,
                "token_type": "Bearer",
                "scope": c["scope"],
                "client_id": token.client_id,
                "sub": c["sub"],
                "exp": c["exp"],
                "iat": c["iat"],
                "iss": c["iss"],
                "aud": c["aud"],
                "jti": c["jti"],
            }
            if "sid" in c:  # a client credentials token belongs to no session
                answer["sid"] = c["sid"]
            return answer
        if not c["active"]:
            return {"active": False}
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": c["scope"],
            "client_id": token.client_id,
            "sub": c["sub"],
            "exp": c["exp"],
            "iat": c["iat"],
            "sid": c["sid"],
        }

    def create_introspection_payload(self, token: PresentedToken | None) -> dict[str, Any]:
        """Inactive unless the token is live and the caller's."""
        if token is None:
            return {"active": False}
        return self.introspect_token(token)


def _save_token(token: dict[str, Any], request: Any) -> None:
    """Tokens are persisted by the grants themselves, inside the request's transaction."""


def create_server(app: Flask) -> AuthorizationServer:
    """Build the authorization server with our grants and endpoints."""
    server = AuthorizationServer(app, query_client=find_client, save_token=_save_token)
    server.register_grant(AuthorizationCodeGrant)
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    return server
