"""Wire formats both apps speak: token types, event URIs, the Stuudium scope and its claims.
The IdP writes them, the school instance reads them; one definition so neither drifts."""

from __future__ import annotations

# Every token we sign carries its type and every consumer checks it.
ID_TOKEN_TYP = "JWT"
ACCESS_TOKEN_TYP = "at+jwt"
LOGOUT_TOKEN_TYP = "logout+jwt"
SET_TYP = "secevent+jwt"
SET_MEDIA_TYPE = "application/secevent+jwt"
# OIDC Back-Channel Logout 1.0 §2.4.
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Our own event type (RFC 8417 §2.2: a URI we control): a person's data changed.
PERSON_CHANGED_EVENT = "https://stuudium.ee/events/person-changed"
# The scope of our own claims: the account's roles, the person's other schools, the language.
STUUDIUM_SCOPE = "stuudium"
STUUDIUM_CLAIMS = ("roles", "schools", "locale")
