"""Our client model as Authlib sees it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from authlib.oauth2.rfc6749 import ClientMixin
from flask import current_app
from sqlalchemy import Table, bindparam, select

from idp.models import Client, School
from idp.tenants.schools import secret_matches
from shared.db import get_db


@dataclass(frozen=True, slots=True)
class ClientRow:
    """The columns of a client that the authorization and token endpoints use."""

    id: int
    client_id: str
    school_id: int
    secret_hash: str | None
    redirect_uris: list[str]
    id_token_signed_response_alg: str


class RelyingParty(ClientMixin):
    """Adapter from a client's row to Authlib's client interface."""

    def __init__(self, row: ClientRow) -> None:
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
        """Authorization code and refresh token grants; client credentials (for the tenant
        admin API) only for a confidential client."""
        if grant_type == "client_credentials":
            return self.row.secret_hash is not None
        return grant_type in ("authorization_code", "refresh_token")


# Built once: every token request runs it. A plain Core select of the columns in use, run on
# the session's connection (same transaction): the ORM's entity loading costs more CPU than
# the SQL itself.
_CLIENT = cast(Table, Client.__table__)
_SCHOOL = cast(Table, School.__table__)
_ACTIVE_CLIENT = (
    select(
        _CLIENT.c.id,
        _CLIENT.c.client_id,
        _CLIENT.c.school_id,
        _CLIENT.c.secret_hash,
        _CLIENT.c.redirect_uris,
        _CLIENT.c.id_token_signed_response_alg,
    )
    .join(_SCHOOL, _SCHOOL.c.id == _CLIENT.c.school_id)
    .where(
        _CLIENT.c.client_id == bindparam("client_id"),
        _CLIENT.c.status == "active",
        _SCHOOL.c.status == "active",
    )
)


# Active clients by client_id, with the monotonic time each entry goes stale. Every token and
# authorization request needs its client; the rows change rarely, so a short per-process cache
# saves a round trip. A client disabled or re-secreted takes effect within CLIENT_CACHE_SECONDS;
# unknown ids are never cached (nobody can fill the cache, a new client works at once).
_CACHE_MAX = 10_000


def find_client(client_id: str | None) -> RelyingParty | None:
    """Return the active client with this client_id of an active school."""
    if not client_id or len(client_id) > 64:
        return None
    now = time.monotonic()
    cache: dict[str, tuple[float, ClientRow]] = current_app.extensions.setdefault(
        "client_cache", {}
    )
    cached = cache.get(client_id)
    if cached is not None and cached[0] > now:
        return RelyingParty(cached[1])
    row = get_db().connection().execute(_ACTIVE_CLIENT, {"client_id": client_id}).first()
    if row is None:
        cache.pop(client_id, None)
        return None
    client = ClientRow(*row)
    ttl = current_app.config["CLIENT_CACHE_SECONDS"]
    if ttl > 0:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[client_id] = (now + ttl, client)
    return RelyingParty(client)
