"""RP-initiated logout (OIDC RP-Initiated Logout 1.0), the protocol side: which school asked (by
a valid id_token_hint), where the browser may go afterwards (an exact registered URI, only with
a valid hint), and whether the person must be asked first. The page is views/logout_page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select

from idp.models import Client
from idp.oidc.resource import check_id_token_hint
from shared.db import get_db


@dataclass(frozen=True)
class LogoutRequest:
    """What a logout request asks, checked."""

    hint_sid: str | None
    continue_to: str | None
    school_id: int | None = None  # the school of the hint's client, when the hint is valid

    def needs_confirmation(self, session_sid: str | None, confirmed: bool) -> bool:
        """Ask before ending a session the hint does not name (another site may have sent it)."""
        return session_sid is not None and not confirmed and self.hint_sid != session_sid


def parse(values: Mapping[str, str]) -> LogoutRequest:
    """Check the hint and the post-logout redirect URI; the URI is kept only when registered
    for the hint's school, and then carries the state back."""
    hint = check_id_token_hint(values.get("id_token_hint"))
    target = values.get("post_logout_redirect_uri")
    client = None
    if hint is not None:
        client = get_db().scalar(select(Client).where(Client.client_id == hint["aud"]))
    if target is not None and (client is None or target not in client.post_logout_redirect_uris):
        target = None
    continue_to = None
    if target is not None and hint is not None:
        state = values.get("state")
        continue_to = target + (
            ("&" if "?" in target else "?") + urlencode({"state": state}) if state else ""
        )
    return LogoutRequest(
        hint.get("sid") if hint is not None else None,
        continue_to,
        client.school_id if client is not None else None,
    )
