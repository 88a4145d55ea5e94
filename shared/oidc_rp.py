"""What a relying party knows of its OpenID provider: discovery metadata and the JWKS, cached per
process, and ID-token validation (the school instance of our IdP; the IdP of the upstream eID)."""

from __future__ import annotations

import base64
import functools
import http.client
import json
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from urllib3.util.wait import wait_for_read


class _PooledSession(requests.Session):
    """A requests session that reads the proxy and CA-bundle settings of the environment once
    per origin instead of on every request.

    requests scans the whole environment twice per request (proxies, then no_proxy), which
    cost about a third of the school's CPU for a token exchange; a worker's environment does
    not change while it runs, so the answer is the same every time.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], Any] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        """requests' own merge, remembered per origin and settings."""
        if proxies or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (
            parts.scheme,
            parts.netloc.lower(),
            stream,
            verify,
            cert,
            self.stream,
            self.verify,
            self.cert,
            tuple(sorted(self.proxies.items())),
        )
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, {}, stream, verify, cert)
            if len(self._environment) < 64:
                self._environment[key] = found
        return {**found, "proxies": dict(found["proxies"])}


# One connection pool for all calls to providers: token exchanges are on the hot path.
HTTP = _PooledSession()
HTTP.mount("http://", requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32))
HTTP.mount("https://", requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32))
HTTP.headers["User-Agent"] = "Stuudium"

_TOKEN_HEADERS = {
    "Accept": "application/json",
    "Content-Type": "application/x-www-form-urlencoded",
    "User-Agent": "Stuudium",
}
Origin = tuple[str, str, int]


@functools.lru_cache(maxsize=64)
def _target(url: str) -> tuple[Origin, str]:
    """(scheme, host, port) and the request target of an endpoint URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectionError(f"not an http(s) URL: {url[:100]}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), path


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle kept-alive connection was closed by the server (readable: EOF or junk)."""
    return conn.sock is None or wait_for_read(conn.sock, timeout=0.0)


class TokenConnections:
    """Kept-alive connections to token endpoints, per origin and process, on http.client:
    urllib3's pool and request layers cost more CPU than the rest of a code exchange on the
    client side. A connection the server closed or marked for closing is never reused, a
    request is never retried (a code is redeemed once), a forked child opens its own."""

    def __init__(self, keep: int = 4) -> None:
        self._keep = keep
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._tls: ssl.SSLContext | None = None

    def acquire(self, origin: Origin, timeout: float) -> http.client.HTTPConnection:
        """An idle connection to the origin that is still open, or a new one (not yet
        connected: http.client connects on the first request)."""
        with self._lock:
            if self._pid != os.getpid():
                self._idle, self._pid = {}, os.getpid()  # the parent's stay the parent's
            idle = self._idle.get(origin)
            conn = idle.pop() if idle else None
        if conn is not None:
            if not _dropped(conn):
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                return conn
            conn.close()
        scheme, host, port = origin
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context())
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def release(self, origin: Origin, conn: http.client.HTTPConnection, reusable: bool) -> None:
        """Keep a connection whose answer was read in full and left it open; close others."""
        if reusable and conn.sock is not None:
            with self._lock:
                idle = self._idle.setdefault(origin, [])
                if self._pid == os.getpid() and len(idle) < self._keep:
                    idle.append(conn)
                    return
        conn.close()

    def close(self) -> None:
        """Close every idle connection (the process or a test is done with them)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _context(self) -> ssl.SSLContext:
        """The TLS context: the system's CAs, certificate and host name checked."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls


TOKEN_CONNECTIONS = TokenConnections()


@dataclass(frozen=True)
class TokenResponse:
    """A token endpoint's answer: the status and the decoded JSON body (None if not JSON)."""

    status: int
    body: Any


def post_token(url: str, body: str, client_id: str, secret: str, timeout: float) -> TokenResponse:
    """POST a token request with client_secret_basic (RFC 6749 §2.3.1: both parts
    form-urlencoded before Basic), never following a redirect; transport failures raise
    ConnectionError (an OSError, like requests' own)."""
    credentials = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    headers = {
        **_TOKEN_HEADERS,
        "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
    }
    origin, target = _target(url)
    conn = TOKEN_CONNECTIONS.acquire(origin, timeout)
    try:
        conn.request("POST", target, body.encode(), headers)
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise ConnectionError(f"token endpoint unreachable: {exc}") from exc
    TOKEN_CONNECTIONS.release(origin, conn, not resp.will_close)
    try:
        decoded = json.loads(data) if data else None
    except ValueError:
        decoded = None
    return TokenResponse(resp.status, decoded)


ID_TOKEN_ALGS = ["RS256", "ES256"]
JWKS_MIN_REFETCH_SECONDS = 10


class IdTokenInvalid(Exception):
    """An ID token that must not start a session."""


@dataclass
class Provider:
    """One issuer's metadata and keys."""

    issuer: str
    metadata: dict[str, Any]
    keys: KeySet
    keys_fetched: float
    lock: threading.Lock = field(default_factory=threading.Lock)

    def endpoint(self, name: str) -> str:
        """Return an endpoint URL from the metadata."""
        return str(self.metadata[name])

    def refresh_keys(self, timeout: float) -> None:
        """Fetch the JWKS again (an unknown kid: the IdP rotated), at most every few seconds."""
        with self.lock:
            if time.monotonic() - self.keys_fetched < JWKS_MIN_REFETCH_SECONDS:
                return
            self.keys = KeySet.import_key_set(
                HTTP.get(self.endpoint("jwks_uri"), timeout=timeout).json()
            )
            self.keys_fetched = time.monotonic()


_PROVIDERS: dict[str, Provider] = {}
_LOCK = threading.Lock()


def provider(issuer: str, timeout: float) -> Provider:
    """Return the provider for an issuer, fetching discovery and JWKS on first use."""
    found = _PROVIDERS.get(issuer)
    if found is not None:
        return found
    with _LOCK:
        found = _PROVIDERS.get(issuer)
        if found is None:
            meta = HTTP.get(f"{issuer}/.well-known/openid-configuration", timeout=timeout).json()
            if meta.get("issuer") != issuer:
                raise RuntimeError("discovery issuer mismatch")
            keys = KeySet.import_key_set(HTTP.get(meta["jwks_uri"], timeout=timeout).json())
            found = Provider(issuer, meta, keys, time.monotonic())
            _PROVIDERS[issuer] = found
    return found


def validate_id_token(
    prov: Provider, token: str, *, client_id: str, nonce: str | None, leeway: int, timeout: float
) -> dict[str, Any]:
    """OIDC Core §3.1.3.7: signature, typ, iss, aud/azp, exp, iat, nonce and a sub."""
    if not isinstance(token, str) or not token or len(token) > 16384:
        raise IdTokenInvalid("missing")
    try:
        decoded = jwt.decode(token, prov.keys, algorithms=ID_TOKEN_ALGS)
    except JoseError as exc:
        if "kid" in str(exc).lower() or "key" in str(exc).lower():
            prov.refresh_keys(timeout)
            try:
                decoded = jwt.decode(token, prov.keys, algorithms=ID_TOKEN_ALGS)
            except JoseError as again:
                raise IdTokenInvalid("signature") from again
        else:
            raise IdTokenInvalid("signature") from exc
    except ValueError as exc:
        raise IdTokenInvalid("malformed") from exc
    if decoded.header.get("typ") != "JWT":  # our IdP always types its tokens; none is refused
        raise IdTokenInvalid("type")
    claims = dict(decoded.claims)
    now = time.time()
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if claims.get("iss") != prov.issuer:
        raise IdTokenInvalid("issuer")
    if client_id not in auds or (len(auds) > 1 and claims.get("azp") != client_id):
        raise IdTokenInvalid("audience")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or exp + leeway < now:
        raise IdTokenInvalid("expired")
    if not isinstance(iat, int) or iat - leeway > now:
        raise IdTokenInvalid("issued in the future")
    if nonce is not None and claims.get("nonce") != nonce:
        raise IdTokenInvalid("nonce")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenInvalid("sub")
    return claims


def verify_jwt(prov: Provider, token: str, algorithms: list[str], timeout: float) -> Any:
    """Verify a JWT signed by the provider (logout tokens, SETs); returns the decoded token."""
    try:
        return jwt.decode(token, prov.keys, algorithms=algorithms)
    except JoseError:
        prov.refresh_keys(timeout)
        return jwt.decode(token, prov.keys, algorithms=algorithms)
