"""The key layout of the IdP's Redis state: every key is built here, nowhere else.

Each key, what it holds, and how long it lives:

- `idp:sess:<sha256 of cookie>`: the SSO session's hot copy (JSON: sid, person, auth time,
  amr, acr, exp); the idle time, slid on use, never past the absolute cap.
- `idp:sid:<sid>`: that session's cookie hash; while it exists the session is live; as above.
- `idp:nosess:<sha256 of cookie>`: a cookie that matched no live session in SQL either (random,
  ended, idled out): asked again only after 30 s, so unknown cookies cannot turn into SQL load.
- `idp:ended:<sid>`: a session whose end is committed; a minute, so that a Redis miss read from
  SQL just before the end cannot write the copy back after it.
- `idp:code:<sha256 of code>`: `client|grant|payload`, then the marker `used|grant|` after
  redemption; 60 s, the marker 10 minutes.
- `idp:ix:<id>`: a pending authorization request and its result; the interaction time.
- `idp:deny:grant:<grant id>`: a revoked grant; as long as any of its tokens lives.
- `idp:deny:jti:<jti>`: a revoked access token; until it expires.
- `idp:fail:acct:<school>:<e-mail>`, `idp:fail:addr:<address>`: failed logins for an account
  and from a client address; the failure window.
- `idp:fail:link:<counter>:<address>`: one-time link uses from a client address; likewise.
- `idp:fail:pwchange:<person>`: wrong current passwords on the password page; likewise.
- `idp:req:<kind>:<school>:<e-mail>`, `idp:req:<kind>:<school>:addr:<address>`: mails asked
  for, per typed address and per client address; likewise.
- `idp:eid:<sha256 of state>`: a pending upstream eID request; the interaction time.
- `idp:limit…`: the fixed windows of the coarse form limit (the limits library's layout under this
  prefix, `store/limits.py`); a minute.
"""

from __future__ import annotations

SESSION = "idp:sess:"
SID = "idp:sid:"
NO_SESSION = "idp:nosess:"
ENDED = "idp:ended:"
CODE = "idp:code:"
INTERACTION = "idp:ix:"
DENY_GRANT = "idp:deny:grant:"
DENY_JTI = "idp:deny:jti:"
EID_PENDING = "idp:eid:"
# The coarse per-route windows of store/limits (the limits library's layout under this prefix).
LIMITS = "idp:limit"


def session(cookie_hash: str) -> str:
    """The hot copy of a session, by the SHA-256 of its cookie secret."""
    return SESSION + cookie_hash


def sid(session_id: str) -> str:
    """The key whose existence says a session is live."""
    return SID + session_id


def no_session(cookie_hash: str) -> str:
    """The mark of a cookie that matched no live session, by the SHA-256 of its secret."""
    return NO_SESSION + cookie_hash


def ended(session_id: str) -> str:
    """The mark of a session whose end was just committed."""
    return ENDED + session_id


def code(code_hash: str) -> str:
    """An authorization code, by its SHA-256."""
    return CODE + code_hash


def interaction(ix: str) -> str:
    """A pending authorization request."""
    return INTERACTION + ix


def denied_grant(grant_id: str) -> str:
    """The deny-list mark of a grant."""
    return DENY_GRANT + grant_id


def denied_jti(jti: str) -> str:
    """The deny-list mark of one access token."""
    return DENY_JTI + jti


def login_failures(school_id: int, email: str) -> str:
    """Failed logins for one login e-mail at one school."""
    return f"idp:fail:acct:{school_id}:{email}"


def address_failures(address: str) -> str:
    """Failed logins from one client address."""
    return f"idp:fail:addr:{address}"


def link_uses(counter: str, address: str) -> str:
    """One-time link uses from one client address on one school's (or the account's) pages."""
    return f"idp:fail:link:{counter}:{address}"


def password_change_failures(person_id: int) -> str:
    """Wrong current passwords given on the password page."""
    return f"idp:fail:pwchange:{person_id}"


def mail_requests(kind: str, school: str, email: str) -> str:
    """Mails of one kind asked for one typed address at one school."""
    return f"idp:req:{kind}:{school}:{email.lower()}"


def mail_requests_by_address(kind: str, school: str, address: str) -> str:
    """Mails of one kind asked from one client address at one school."""
    return f"idp:req:{kind}:{school}:addr:{address}"


def eid_pending(state_hash: str) -> str:
    """A pending upstream eID request, by the SHA-256 of its state."""
    return EID_PENDING + state_hash
