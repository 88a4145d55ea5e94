"""The development mail catcher: an SMTP server (aiosmtpd) that keeps every message in memory,
a web page listing them with clickable links, and a JSON list at /api/messages.

`make run` starts it (SMTP on localhost:1025, the page on http://localhost:8025); tests start
one of their own on free ports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import html
import http.server
import json
import re
import signal
import threading
from typing import Any

from aiosmtpd.controller import Controller

URL_RE = re.compile(r"https?://[^\s<>\"]+")


class _Handler:
    """aiosmtpd's handler: parse and keep each message."""

    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        self.catcher.add(
            {
                "from": str(msg.get("From", "")),
                "to": list(envelope.rcpt_tos),
                "subject": str(msg.get("Subject", "")),
                "body": text,
                "language": str(msg.get("Content-Language", "")),
                "links": URL_RE.findall(text),
                "received_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )
        return "250 Message accepted"


class MailCatcher:
    """SMTP in, HTTP out, both on loopback."""

    def __init__(self, smtp_port: int, http_port: int, host: str = "127.0.0.1") -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.smtp = Controller(_Handler(self), hostname=host, port=smtp_port)
        self.http = http.server.ThreadingHTTPServer((host, http_port), self._http_handler())
        self.smtp_url = f"smtp://{host}:{smtp_port}"
        self.url = f"http://{host}:{http_port}"

    def add(self, message: dict[str, Any]) -> None:
        """Keep a message (numbered from 1)."""
        with self.lock:
            message["id"] = len(self.messages) + 1
            self.messages.append(message)

    def _page(self) -> str:
        with self.lock:
            items = list(reversed(self.messages))
        rows = (
            "".join(
                f"<article><h2>{html.escape(m['subject'])}</h2><p class=meta>"
                f"{html.escape(', '.join(m['to']))} · {html.escape(m['received_at'])}</p><pre>"
                + URL_RE.sub(
                    lambda u: f'<a href="{u.group(0)}">{u.group(0)}</a>',
                    html.escape(m["body"], quote=False),
                )
                + "</pre></article>"
                for m in items
            )
            or "<p>Kirju veel ei ole.</p>"
        )
        return (
            "<!doctype html><meta charset=utf-8><title>Stuudium ID – e-kirjad</title>"
            "<style>body{font-family:sans-serif;max-width:50rem;margin:2rem auto}"
            "pre{white-space:pre-wrap}.meta{color:#666}</style>"
            f"<h1>Saadetud e-kirjad (arenduses)</h1>{rows}"
        )

    def _http_handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/api/messages":
                    with catcher.lock:
                        body = json.dumps({"messages": catcher.messages}).encode()
                    kind = "application/json"
                elif self.path.split("?")[0] == "/":
                    body, kind = catcher._page().encode(), "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        return Handler

    def start(self) -> MailCatcher:
        """Start both servers in background threads."""
        self.smtp.start()
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop both servers and free their ports."""
        self.smtp.stop()
        self.http.shutdown()
        self.http.server_close()


def main() -> None:
    """Run the catcher until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args()
    catcher = MailCatcher(args.smtp_port, args.http_port).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    catcher.stop()


if __name__ == "__main__":
    main()
