"""Calling the IdP's tenant admin API with the signed-in admin's own access token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from flask import current_app

from school_instance.provider import HTTP
from school_instance.tenancy import TenantInfo

PREFIX = "/api/admin/v1"


class AdminApiError(Exception):
    """The IdP refused the call (status and its error code) or did not answer (status None)."""

    def __init__(self, status: int | None, error: str) -> None:
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error


def call(tenant: TenantInfo, access_token: str, method: str, path: str,
         body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Make one call (body: sent as JSON); return its JSON body or raise AdminApiError."""
    try:
        resp = HTTP.request(method, f"{tenant.issuer}{PREFIX}{path}", json=body,
                            headers={"Authorization": f"Bearer {access_token}",
                                     "Accept": "application/json"},
                            timeout=current_app.config["IDP_TIMEOUT_SECONDS"],
                            allow_redirects=False)
    except requests.RequestException as exc:
        raise AdminApiError(None, type(exc).__name__) from exc
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise AdminApiError(resp.status_code, "not_json")
    if resp.status_code != 200:
        raise AdminApiError(resp.status_code, str(answer.get("error") or "unknown"))
    return answer


def accounts(tenant: TenantInfo, access_token: str) -> list[dict[str, Any]]:
    """The school's accounts as the IdP knows them."""
    found = call(tenant, access_token, "GET", "/accounts").get("accounts")
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def set_status(tenant: TenantInfo, access_token: str, sub: str, action: str) -> dict[str, Any]:
    """Disable or enable one account (action: "disable" or "enable")."""
    if action not in ("disable", "enable"):
        raise ValueError(action)
    return call(tenant, access_token, "POST", f"/accounts/{quote(sub, safe='')}/{action}")


def applications(tenant: TenantInfo, access_token: str) -> list[dict[str, Any]]:
    """The school's pending account applications."""
    found = call(tenant, access_token, "GET", "/applications").get("applications")
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def decide(tenant: TenantInfo, access_token: str, application_id: int, action: str,
           reason: str | None = None) -> dict[str, Any]:
    """Approve or reject one application (action: "approve" or "reject", with a reason)."""
    if action not in ("approve", "reject"):
        raise ValueError(action)
    return call(tenant, access_token, "POST", f"/applications/{application_id}/{action}",
                {"reason": reason} if action == "reject" else {})
