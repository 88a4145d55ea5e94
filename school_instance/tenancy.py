"""Choosing the school from the request's host, and keeping every query inside it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, g, make_response, redirect, render_template, request
from flask_babel import gettext as _
from sqlalchemy import Select, select
from werkzeug.wrappers import Response

from school_instance.models import Tenant
from shared.db import get_db
from shared.flask_session import LeanSessionInterface
from shared.ops import OPS_PATHS

T = TypeVar("T")


@dataclass(frozen=True)
class TenantInfo:
    """What a request needs to know of its school."""

    id: int
    slug: str
    name: str
    base_url: str
    issuer: str
    client_id: str
    client_secret: str
    default_locale: str
    logo_url: str | None = None

    @property
    def cookie_name(self) -> str:
        """The local session cookie: one name per school (browsers share cookies across ports)."""
        return f"stuudium_{self.slug}"

    @property
    def canonical_host(self) -> str:
        """The host of the registered address (its default port left out)."""
        return _without_default_port(urlsplit(self.base_url))

    @property
    def redirect_uri(self) -> str:
        """The registered callback, from configuration, never from the Host header."""
        return f"{self.base_url}/auth/callback"


class TenantCache:
    """Host → school, cached briefly per process."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self._by_host: dict[str, TenantInfo] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()

    def find(self, host: str) -> TenantInfo | None:
        """Return the active school served at host (host:port in development)."""
        if time.monotonic() - self._loaded > self.seconds:
            with self._lock:
                rows = get_db().scalars(select(Tenant).where(Tenant.status == "active")).all()
                self._by_host = {h.lower(): _info(t) for t in rows for h in t.hosts}
                self._loaded = time.monotonic()
        return self._by_host.get(host.lower())

    def invalidate(self) -> None:
        """Forget the cache (after a tenant is added)."""
        self._loaded = 0.0


def _without_default_port(parts: Any) -> str:
    default = {"http": ":80", "https": ":443"}.get(parts.scheme, "")
    host = str(parts.netloc).lower()
    return host[: -len(default)] if default and host.endswith(default) else host


def _info(t: Tenant) -> TenantInfo:
    return TenantInfo(
        t.id,
        t.slug,
        t.name,
        t.base_url.rstrip("/"),
        t.issuer.rstrip("/"),
        t.client_id,
        t.client_secret,
        t.default_locale,
        t.logo_url,
    )


def current() -> TenantInfo:
    """The request's school."""
    tenant: TenantInfo = g.tenant
    return tenant


def scoped(model: type[T]) -> Select[Any]:
    """select(model) restricted to the request's school — the one place tenancy is applied."""
    return select(model).where(model.tenant_id == current().id)  # type: ignore[attr-defined]


def get_scoped(model: type[T], ident: int) -> T:
    """Return one row of the request's school, or 404 (another school's row is not found)."""
    row: T | None = get_db().scalar(scoped(model).where(model.id == ident))  # type: ignore[attr-defined]
    if row is None:
        abort(404)
    return row


def resolve(app: Flask) -> TenantInfo | None:
    """Find the request's school once per request (the session cookie needs it first)."""
    if "tenant" not in g:
        cache: TenantCache = app.extensions["tenants"]
        g.tenant = cache.find(request.host)
    tenant: TenantInfo | None = g.tenant
    return tenant


class TenantSessionInterface(LeanSessionInterface):
    """Flask's signed session (CSRF token only), under a cookie name of the school's own."""

    def get_cookie_name(self, app: Flask) -> str:
        """Name the cookie after the school."""
        tenant = resolve(app)
        return f"{tenant.cookie_name}_ui" if tenant else "stuudium_ui"


def is_alias(tenant: TenantInfo) -> bool:
    """Whether this request came by another host of the school than its registered address's
    (127.0.0.1:5001 for localhost:5001): cookies, sign-in and the IdP's redirects all belong
    to the registered address."""
    scheme = urlsplit(tenant.base_url).scheme
    asked = _without_default_port(urlsplit(f"{scheme}://{request.host}"))
    return asked != tenant.canonical_host


def to_registered_address(tenant: TenantInfo) -> Response:
    """GET and HEAD move permanently (308) to the same path at the registered address; any
    other method gets a page with a link there (a form is not re-sent to another origin)."""
    target = tenant.base_url + request.full_path.rstrip("?")
    if request.method in ("GET", "HEAD"):
        return redirect(target, 308)
    body = render_template(
        "message.html",
        title=_("Kool on teisel aadressil"),
        message=_(
            "Kooli %(school)s e-päevik on aadressil %(url)s. Seda toimingut siin teha ei saa: "
            "ava kool selle aadressi kaudu ja proovi uuesti.",
            school=tenant.name,
            url=tenant.base_url,
        ),
        action=(_("Ava %(school)s", school=tenant.name), tenant.base_url + "/"),
    )
    return make_response(body, 421)


def init_app(app: Flask) -> None:
    """Resolve the tenant before every request; unknown hosts get 404, a school's other hosts
    go to its registered address."""
    cache = TenantCache(app.config["TENANT_CACHE_SECONDS"])
    app.extensions["tenants"] = cache
    app.session_interface = TenantSessionInterface()

    @app.before_request
    def _tenant() -> Any:
        if request.path in OPS_PATHS or request.path.startswith("/static/"):
            return None
        tenant = resolve(app)
        if tenant is None:
            abort(404)
        if is_alias(tenant):
            return to_registered_address(tenant)
        return None
