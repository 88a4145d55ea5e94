"""Flask's signed-cookie session (it holds only the CSRF token), built once per process."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class LeanSessionInterface(SecureCookieSessionInterface):
    """Flask's own interface, minus two costs on every request: the signing serializer is
    built once per key set instead of per request, and a request without the cookie (most of
    the sign-in redirects) gets an empty session without one."""

    _cached: tuple[tuple[object, ...], URLSafeTimedSerializer] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Flask's serializer for the app's current keys, remembered while they stay."""
        if not app.secret_key:
            return None
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        serializer = super().get_signing_serializer(app)
        if serializer is not None:
            self._cached = (key, serializer)
        return serializer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """No cookie: an empty session, without touching the keys."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
