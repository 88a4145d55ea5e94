"""Our client model as Authlib sees it."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import bindparam, select
from sqlalchemy.orm import lazyload

from idp.models import Client, School
from idp.schools import secret_matches
from shared.db import get_db


class RelyingParty(ClientMixin):
    """Adapter from a Client row to Authlib's client interface."""

    def __init__(self, row: Client) -> None:
        self.row = row
        self.client_id = row.client_id

    def get_client_id(self) -> str:
        """Return the client_id."""
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        """There is no default redirect URI: it is always sent and compared."""
        return None

    def get_allowed_scope(self, scope: str) -> str:
        """Every registered client may ask for the standard scopes."""
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Match a redirect URI exactly, character for character."""
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        """Compare the secret with the stored SHA-256 in constant time."""
        return secret_matches(self.row.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Confidential clients use either secret method; public clients only none."""
        if self.row.secret_hash is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        """Only the code flow."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """Authorization code and refresh token grants."""
        return grant_type in ("authorization_code", "refresh_token")


# Built once: every token request runs it, and a prebuilt statement skips constructing the
# query and computing its cache key each time. The school (with its logo) is not needed on the
# token path: it loads on first access instead of through a second join on every request.
_ACTIVE_CLIENT = select(Client).join(School).options(lazyload(Client.school)).where(
    Client.client_id == bindparam("client_id"), Client.status == "active",
    School.status == "active")


def find_client(client_id: str | None) -> RelyingParty | None:
    """Return the active client with this client_id of an active school."""
    if not client_id or len(client_id) > 64:
        return None
    row = get_db().scalar(_ACTIVE_CLIENT, {"client_id": client_id})
    return RelyingParty(row) if row else None
