"""Is an applicant one of a child's known guardians? Matched only on what was verified: the
applicant's e-mail (its confirmation link proved they read it) against the guardians' e-mail
as the school recorded it. A name is anyone's to type: a matching name with another address is
a stronger warning (someone may be posing as the parent), never a match.

The school instance holds no eID-verified codes of guardians, and an application's own code is
typed, not proved: so the e-mail is the only verified identifier to match on today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from school_instance.models import Member
from shared.names import same_name

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Match(StrEnum):
    """How an applicant stands against a child's known guardians."""

    VERIFIED = "verified"  # the confirmed e-mail is a known guardian's
    NAME_ONLY = "name-only"  # a known guardian's name, but another e-mail
    NONE = "none"  # not a known guardian


@dataclass
class GuardianMatch:
    """The match and, for a name-only one, the guardians whose name the applicant gave."""

    match: Match
    named: list[Member] = field(default_factory=list)


def comparable_address(address: str | None) -> str:
    """An e-mail address as compared here: trimmed, ASCII letters lower-cased (a non-ASCII
    letter is left as it is, so that no look-alike folds onto an ASCII address)."""
    return (address or "").strip().translate(_ASCII_LOWER)


def _same_address(member: Member, application: dict[str, Any]) -> bool:
    mine = comparable_address(application.get("email"))
    return bool(mine) and comparable_address(member.email) == mine


def _same_name(member: Member, application: dict[str, Any]) -> bool:
    return same_name(member.given_name, str(application.get("given_name") or "")) and same_name(
        member.family_name, str(application.get("family_name") or "")
    )


def match_guardian(guardians: list[Member], application: dict[str, Any]) -> GuardianMatch:
    """Match an applicant against the child's known guardians (e-mail only; see the module)."""
    if any(_same_address(member, application) for member in guardians):
        return GuardianMatch(Match.VERIFIED)
    named = [member for member in guardians if _same_name(member, application)]
    return GuardianMatch(Match.NAME_ONLY if named else Match.NONE, named)
