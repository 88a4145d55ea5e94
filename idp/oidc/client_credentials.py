"""The client credentials grant (RFC 6749 §4.4) for a school's own client: an access token for
the tenant admin API only (scope `admin`), bound to that client's school, short-lived."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidScopeError, UnauthorizedClientError
from flask import current_app

from idp.oidc import tokens
from idp.oidc.clients import RelyingParty
from shared.db import get_db

ADMIN_SCOPE = "admin"
ADMIN_API_PATH = "/api/admin/v1"


def admin_audience() -> str:
    """The aud of tokens for the tenant admin API (never the IdP's own userinfo)."""
    return f"{current_app.config['ISSUER']}{ADMIN_API_PATH}"


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """A confidential school client authenticates and gets a token for the admin API."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        """Authenticate the client; the only scope is `admin` (also when none is asked)."""
        client: RelyingParty = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("Only a confidential school client may use it.")
        scopes = self.request.form.getlist("scope")
        if len(scopes) > 1 or (scopes and scopes[0] and scopes[0].split() != [ADMIN_SCOPE]):
            raise InvalidScopeError("The only scope of this grant is 'admin'.")
        self.request.client = client

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Issue the access token: no refresh token, no ID token."""
        client: RelyingParty = self.request.client
        cfg = current_app.config
        ttl = cfg["ACCESS_TOKEN_TTL_SECONDS"]
        access, _ = tokens.client_access_token(
            current_app.extensions["keys"].ring(get_db),
            cfg["ISSUER"],
            ttl,
            client_id=client.client_id,
            audience=admin_audience(),
            scope=ADMIN_SCOPE,
        )
        return (
            200,
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": ttl,
                "scope": ADMIN_SCOPE,
            },
            self.TOKEN_RESPONSE_HEADER,
        )
