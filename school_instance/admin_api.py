"""Calling the IdP's tenant admin API: with the signed-in admin's own access token, or with the
school client's client credentials token naming the signed-in person as the acting account."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

import requests
from flask import current_app

from school_instance.provider import HTTP, provider
from school_instance.tenancy import TenantInfo

PREFIX = "/api/admin/v1"


class AdminApiError(Exception):
    """The IdP refused the call (status and its error code) or did not answer (status None)."""

    def __init__(self, status: int | None, error: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error
        self.body = body or {}


def call(
    tenant: TenantInfo,
    access_token: str,
    method: str,
    path: str,
    *,
    acting_sub: str | None = None,
    body: dict[str, Any] | None = None,
    if_match: int | None = None,
) -> dict[str, Any]:
    """Make one call; return its JSON body or raise AdminApiError."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    if acting_sub is not None:
        headers["Stuudium-Acting-Sub"] = acting_sub
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"'
    try:
        resp = HTTP.request(
            method,
            f"{tenant.issuer}{PREFIX}{path}",
            headers=headers,
            json=body,
            timeout=current_app.config["IDP_TIMEOUT_SECONDS"],
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise AdminApiError(None, type(exc).__name__) from exc
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise AdminApiError(resp.status_code, "not_json")
    if resp.status_code not in (200, 201):
        raise AdminApiError(resp.status_code, str(answer.get("error") or "unknown"), answer)
    return answer


# The school client's admin API tokens by tenant id: (token, monotonic time it goes stale).
_CLIENT_TOKENS: dict[int, tuple[str, float]] = {}
_CLIENT_TOKENS_LOCK = threading.Lock()


def client_token(tenant: TenantInfo) -> str:
    """The school client's own token for the admin API (client credentials grant), reused
    until shortly before it expires."""
    cached = _CLIENT_TOKENS.get(tenant.id)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]

    timeout = current_app.config["IDP_TIMEOUT_SECONDS"]
    try:
        resp = HTTP.post(
            provider(tenant.issuer, timeout).endpoint("token_endpoint"),
            data={"grant_type": "client_credentials", "scope": "admin"},
            auth=(tenant.client_id, tenant.client_secret),
            timeout=timeout,
            allow_redirects=False,
        )
        token = resp.json() if resp.status_code == 200 else None
    except (requests.RequestException, ValueError, RuntimeError) as exc:
        raise AdminApiError(None, type(exc).__name__) from exc
    if not isinstance(token, dict) or not isinstance(token.get("access_token"), str):
        raise AdminApiError(resp.status_code, "no_token")
    with _CLIENT_TOKENS_LOCK:
        _CLIENT_TOKENS[tenant.id] = (
            token["access_token"],
            time.monotonic() + max(0, int(token.get("expires_in", 60)) - 30),
        )
    return str(token["access_token"])


def person(tenant: TenantInfo, acting_sub: str, sub: str) -> dict[str, Any]:
    """One account of the school with its person's current data and version."""
    return call(
        tenant,
        client_token(tenant),
        "GET",
        f"/accounts/{quote(sub, safe='')}",
        acting_sub=acting_sub,
    )


def correct(
    tenant: TenantInfo, acting_sub: str, sub: str, version: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Correct a person's data if version is still theirs (else AdminApiError 409, whose body
    has the current data)."""
    return call(
        tenant,
        client_token(tenant),
        "PATCH",
        f"/accounts/{quote(sub, safe='')}/person",
        acting_sub=acting_sub,
        body=changes,
        if_match=version,
    )


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


def decide(
    tenant: TenantInfo,
    access_token: str,
    application_id: int,
    action: str,
    reason: str | None = None,
) -> dict[str, Any]:
    """Approve or reject one application (action: "approve" or "reject", with a reason)."""
    if action not in ("approve", "reject"):
        raise ValueError(action)
    return call(
        tenant,
        access_token,
        "POST",
        f"/applications/{application_id}/{action}",
        body={"reason": reason} if action == "reject" else {},
    )


def tell_idp(tenant: TenantInfo, access_token: str, locale: str) -> bool:
    """Pass the person's language choice to Stuudium ID with their own access token; the IdP
    keeps it and tells their other schools. The choice made here stands even if this fails."""
    try:
        resp = HTTP.post(
            f"{tenant.issuer}/me/locale",
            json={"locale": locale},
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=current_app.config["IDP_TIMEOUT_SECONDS"],
            allow_redirects=False,
        )
    except requests.RequestException:
        current_app.logger.warning("the language choice did not reach Stuudium ID")
        return False
    return resp.status_code == 200
