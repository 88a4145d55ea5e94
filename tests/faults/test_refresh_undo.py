"""A refresh that fails after its claim undoes it (idp/oidc/rotation.py `unclaim`): Redis goes
away between the rotation, committed at once, and the grant's deny check, so the school gets a
503 and its token refreshes once Redis is back."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from idp.models import RefreshToken, SsoSession, utcnow
from shared.db import get_db
from shared.security import sha256_hex
from tests.faults.conftest import FaultIdp, RedisServer
from tests.support import Browser, Receiver, refresh, unverified_claims


def _state(idp: FaultIdp, sid: str, token: str) -> tuple[dt.datetime, list[bool]]:
    """The session's last_seen, and whether each refresh token of the token's grant is used."""
    with idp.app.app_context():
        db = get_db()
        seen = db.scalar(select(SsoSession.last_seen).where(SsoSession.id == sid))
        grant = db.scalar(
            select(RefreshToken.grant_id).where(RefreshToken.token_hash == sha256_hex(token))
        )
        used = db.scalars(select(RefreshToken.used_at).where(RefreshToken.grant_id == grant)).all()
        db.rollback()
    assert seen is not None
    return seen.replace(tzinfo=seen.tzinfo or dt.UTC), [u is not None for u in used]


def test_a_refresh_failing_after_its_claim_is_undone(
    idp: FaultIdp, redis_server: RedisServer, browser: Browser, receivers: list[Receiver]
) -> None:
    receivers.append(Receiver())
    school = idp.school(receivers[0].url)
    [issued] = idp.sign_in_everywhere(browser, [school], idp.person([school]))
    token = issued["refresh_token"]
    sid = unverified_claims(issued["id_token"])["sid"]
    earlier = utcnow() - dt.timedelta(seconds=120)
    with idp.app.app_context():
        db = get_db()
        db.execute(update(SsoSession).where(SsoSession.id == sid).values(last_seen=earlier))
        db.commit()
    idp.redis.save()  # the session's copy comes back with the restart
    redis_server.kill()

    failed = refresh(idp.url, school, token)
    assert failed.status_code == 503, failed.text
    seen, used = _state(idp, sid, token)
    assert seen > earlier + dt.timedelta(seconds=60), "the rotation ran: it slid last_seen"
    assert used == [False], "the claim was undone and its successor deleted"

    redis_server.start()
    again = refresh(idp.url, school, token)
    assert again.status_code == 200, again.text
    assert _state(idp, sid, token)[1] == [True, False]
    assert refresh(idp.url, school, again.json()["refresh_token"]).status_code == 200
