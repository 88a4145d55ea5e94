"""The logged-out page clears the SSO cookie in a way browsers accept, behind https too."""

from __future__ import annotations


def test_the_https_cookie_is_cleared_with_secure(idp_app, monkeypatch):
    from idp import create_app
    from idp.views.logout_page import logged_out_page

    monkeypatch.setenv("IDP_ISSUER", "https://id.example.ee")
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": idp_app.config["DATABASE_URL"],
            "REDIS_URL": idp_app.config["REDIS_URL"],
        }
    )
    with app.test_request_context("/account/sessions/end-all", method="POST"):
        resp = logged_out_page(None)
    cleared = resp.headers["Set-Cookie"]
    assert cleared.startswith("__Host-stuudium_idp_sso=;")
    assert "Secure" in cleared and "Path=/" in cleared and "Domain" not in cleared
    assert "Max-Age=0" in cleared or "Expires=Thu, 01 Jan 1970" in cleared


def test_the_cookie_is_kept_when_another_session_ended(idp_app):
    from idp.views.logout_page import logged_out_page

    with idp_app.test_request_context("/account/sessions/end", method="POST"):
        resp = logged_out_page(None, clear_cookie=False)
    assert "Set-Cookie" not in resp.headers
