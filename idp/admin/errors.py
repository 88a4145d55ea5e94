"""The tenant admin API's errors: each class carries its wire code (error) and HTTP status; a
handler raises one and the blueprints' error handler (api.error_answer) renders it as
`{"error", "error_description", ...extra}`. Token and role refusals are RFC 6750's (bearer_error),
not these."""

from __future__ import annotations

from typing import Any


class AdminApiError(Exception):
    """A refused admin API call: error and status on the class, a description (the class's
    default unless given) and extra fields of the body."""

    error = "invalid_request"
    status = 400
    description = "The request is not valid."

    def __init__(self, description: str | None = None, **extra: Any) -> None:
        super().__init__(description or self.description)
        self.description = description or self.description
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"error": self.error, "error_description": self.description, **self.extra}


class InvalidRequest(AdminApiError):
    """A body or header that is not what the call takes (the description says which)."""


class Forbidden(AdminApiError):
    error = "forbidden"
    status = 403


class NotFound(AdminApiError):
    """Not this school's (or not there at all): another school's rows are never found."""

    error = "not_found"
    status = 404


class AccountNotFound(NotFound):
    description = "No such account at this school."


class ApplicationNotFound(NotFound):
    description = "No pending application with this id at this school."


class PreconditionRequired(AdminApiError):
    error = "precondition_required"
    status = 428
    description = "Send the version you read in If-Match (no lost updates)."


class Conflict(AdminApiError):
    """The call clashes with the data as it is now."""

    error = "conflict"
    status = 409


class OwnAccount(Conflict):
    error = "own_account"
    description = "An admin cannot disable their own account."


class EmailInUse(Conflict):
    error = "email_in_use"
    description = "Another active account at this school has this login e-mail."


class LoginFactor(Conflict):
    error = "login_factor"
    description = "The login e-mail of a person linked to other schools is changed by the person."


class VersionMismatch(Conflict):
    error = "version_mismatch"
    description = "The data changed meanwhile; here is the current data."


class IsikukoodInUse(Conflict):
    error = "isikukood_in_use"


class InvalidApplication(Conflict):
    error = "invalid_application"


class AlreadyDecided(Conflict):
    error = "already_decided"
    description = "Another admin decided this application."
