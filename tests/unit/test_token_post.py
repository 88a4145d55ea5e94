"""The relying party's token request (shared.oidc_rp.post_token) over real loopback HTTP."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.oidc_rp import TOKEN_CONNECTIONS, post_token
from tests.support import free_port


class _Recorder(BaseHTTPRequestHandler):
    """Answers each POST as the server's `answer` says, remembering what it was sent."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        """Record the request, then answer."""
        server: Any = self.server
        length = int(self.headers.get("Content-Length", "0"))
        server.seen.append(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": self.rfile.read(length).decode(),
            }
        )
        status, headers, body = server.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        """Quiet."""


def _serving(httpd: Any) -> Iterator[Any]:
    """Serve on a thread, answering a token by default, until the test is done."""
    httpd.seen = []
    httpd.answer = (200, {"Content-Type": "application/json"}, b'{"access_token": "a"}')
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    TOKEN_CONNECTIONS.close()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server() -> Iterator[Any]:
    """A loopback HTTP server whose answer a test sets."""
    yield from _serving(ThreadingHTTPServer(("127.0.0.1", 0), _Recorder))


def _url(httpd: Any) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/token"


def test_client_credentials_are_form_encoded_before_basic(server: Any) -> None:
    """RFC 6749 §2.3.1: client_id and secret are form-urlencoded, then Basic-encoded."""
    resp = post_token(
        _url(server), "grant_type=authorization_code&code=c", "school:1 ä", "s/e+c=r%t", 5
    )
    assert resp.status == 200 and resp.body == {"access_token": "a"}
    sent = server.seen[-1]
    scheme, _, encoded = sent["headers"]["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "school%3A1%20%C3%A4:s%2Fe%2Bc%3Dr%25t"
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent["body"] == "grant_type=authorization_code&code=c"


def test_a_redirect_is_not_followed(server: Any) -> None:
    """A token endpoint's redirect is an answer, not a place to send the code again."""
    server.answer = (307, {"Location": _url(server) + "-elsewhere"}, b"")
    resp = post_token(_url(server), "code=c", "id", "secret", 5)
    assert resp.status == 307 and resp.body is None
    assert [s["path"] for s in server.seen] == ["/token"]


def test_a_body_that_is_not_json_is_none(server: Any) -> None:
    """An HTML error page from a proxy decodes to None (the caller refuses it)."""
    server.answer = (200, {"Content-Type": "text/html"}, b"<html>Service unavailable</html>")
    assert post_token(_url(server), "code=c", "id", "secret", 5).body is None
    server.answer = (
        400,
        {"Content-Type": "application/json"},
        json.dumps({"error": "invalid_grant"}).encode(),
    )
    resp = post_token(_url(server), "code=c", "id", "secret", 5)
    assert resp.status == 400 and resp.body == {"error": "invalid_grant"}


def test_an_unreachable_endpoint_raises_an_os_error() -> None:
    """Refused connections surface as OSError, which the sign-in turns into a clear page."""
    with pytest.raises(OSError):
        post_token(f"http://127.0.0.1:{free_port()}/token", "code=c", "id", "secret", 2)


class _KeepAlive(_Recorder):
    """HTTP/1.1 with keep-alive; the server's `hang_up` closes each connection after its answer
    without saying so (as an idle timeout does)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        """Answer, remembering the client's port (one per connection)."""
        super().do_POST()
        server: Any = self.server
        server.seen[-1]["port"] = self.client_address[1]
        self.close_connection = server.hang_up


class _Server(ThreadingHTTPServer):
    """Counts the connections it has closed."""

    def shutdown_request(self, request: Any) -> None:
        """Close the connection, then count it."""
        super().shutdown_request(request)
        with self.lock:  # type: ignore[attr-defined]
            self.closed += 1  # type: ignore[attr-defined]


@pytest.fixture
def keep_alive_server() -> Iterator[Any]:
    """A loopback HTTP/1.1 server that keeps connections open unless told to hang up."""
    httpd: Any = _Server(("127.0.0.1", 0), _KeepAlive)
    httpd.hang_up, httpd.closed, httpd.lock = False, 0, threading.Lock()
    yield from _serving(httpd)


def test_a_kept_alive_connection_is_reused(keep_alive_server: Any) -> None:
    """A server that keeps the connection open gets the next token request on it."""
    for _ in range(3):
        assert post_token(_url(keep_alive_server), "code=c", "id", "secret", 5).status == 200
    assert len({s["port"] for s in keep_alive_server.seen}) == 1


def test_a_connection_the_server_closed_is_not_reused(keep_alive_server: Any) -> None:
    """An idle connection the server hung up on is replaced before the request is sent, so the
    request (a code, redeemable once) is sent once and answered."""
    keep_alive_server.hang_up = True
    for n in range(1, 4):
        resp = post_token(_url(keep_alive_server), "code=c", "id", "secret", 5)
        assert resp.status == 200 and resp.body == {"access_token": "a"}
        deadline = time.monotonic() + 5
        while keep_alive_server.closed < n and time.monotonic() < deadline:
            time.sleep(0.01)  # the server hangs up after its answer, as an idle timeout would
    assert len(keep_alive_server.seen) == 3
    assert len({s["port"] for s in keep_alive_server.seen}) == 3
