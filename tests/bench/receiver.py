"""Back-channel logout receivers for the logout benchmark: one asyncio process listening on
many loopback ports (one per benchmark school).

Every POST's form body is parsed and its logout token's (aud, sid, jti) recorded with the
arrival time (time.monotonic(), the system-wide CLOCK_MONOTONIC, comparable with the runner's);
the answer is 200 with an empty body, on a keep-alive connection. Signatures are not verified
(the schools' own endpoint does that in the flow tests); the counts are what matter here.
GET /_stats returns the records as JSON, POST /_reset forgets them.

Run: python -m tests.bench.receiver PORT [PORT...]   (prints "ready" when listening)
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from collections.abc import Callable
from urllib.parse import parse_qs

Record = tuple[int, str, str, str, float]  # port, aud, sid, jti, arrival
RECORDS: list[Record] = []
BAD: list[int] = [0]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
MAX_REQUEST = 64 * 1024


def claims_of(body: bytes) -> tuple[str, str, str]:
    """(aud, sid, jti) of the logout token in a form body, without verifying it."""
    token = parse_qs(body.decode("ascii"))["logout_token"][0]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["aud"]), str(claims.get("sid", "")), str(claims["jti"])


class Receiver(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough for form POSTs and the two control paths."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Answer every complete request in the buffer."""
        assert self.transport is not None
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                if len(self.buffer) > MAX_REQUEST:
                    self.transport.close()
                return
            head = self.buffer[:head_end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self.buffer) < end or length > MAX_REQUEST:
                if length > MAX_REQUEST:
                    self.transport.close()
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            self.transport.write(self.answer(head[0], body))

    def answer(self, request_line: str, body: bytes) -> bytes:
        """The response to one request."""
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ", 1)[0]
        if method == "GET" and path == "/_stats":
            data = json.dumps({"records": RECORDS, "bad": BAD[0]}).encode()
            return (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(data)).encode()
                + b"\r\n\r\n"
                + data
            )
        if method == "POST" and path == "/_reset":
            RECORDS.clear()
            BAD[0] = 0
            return OK
        try:
            RECORDS.append((self.port, *claims_of(body), time.monotonic()))
        except (KeyError, ValueError, IndexError, UnicodeDecodeError):
            BAD[0] += 1
            return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
        return OK


def _factory(port: int) -> Callable[[], Receiver]:
    return lambda: Receiver(port)


async def serve(ports: list[int]) -> None:
    """Listen on every port until killed."""
    loop = asyncio.get_running_loop()
    for port in ports:
        await loop.create_server(_factory(port), "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve([int(p) for p in sys.argv[1:]]))
