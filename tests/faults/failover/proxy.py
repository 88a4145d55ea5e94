"""A TCP proxy on loopback for the PostgreSQL failover: one backend at a time, a pair of copying
threads per connection, and a switch to another backend that drops every open connection, as a
Kubernetes "-rw" service does when the primary changes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from tests.support import free_port


class _Pair:
    """A client connection and its upstream, copied both ways by two threads."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.socks = (client, upstream)
        self.left = 2
        self.lock = threading.Lock()

    def pump(self, src: socket.socket, dst: socket.socket, done: Callable[[_Pair], None]) -> None:
        """Copy src to dst until either side ends; the last pump closes both."""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass  # cut, or the other end went away: either ends the pair
        finally:
            self.cut()
            with self.lock:
                self.left -= 1
                last = self.left == 0
            if last:
                for sock in self.socks:
                    sock.close()
                done(self)

    def cut(self) -> None:
        """Shut both sockets down (wakes the pumps; they close them)."""
        for sock in self.socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already shut


class Proxy:
    """A TCP forwarder on loopback to one backend at a time (a Kubernetes "-rw" service in
    miniature): switch() points it at another backend and drops every open connection."""

    def __init__(self, backend: int) -> None:
        self.port = free_port()
        self.backend = backend
        self.listener = socket.create_server(("127.0.0.1", self.port), backlog=256)
        self.listener.settimeout(0.2)
        self.lock = threading.Lock()
        self.pairs: set[_Pair] = set()
        self.threads: list[threading.Thread] = []
        self.closed = threading.Event()

    def start(self) -> Proxy:
        """Accept connections from a thread of its own."""
        self._spawn(self._accept)
        return self

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:
            self.threads = [t for t in self.threads if t.is_alive()]
            self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self._spawn(self._connect, client)

    def _connect(self, client: socket.socket) -> None:
        with self.lock:
            backend = self.backend
        try:
            upstream = socket.create_connection(("127.0.0.1", backend), timeout=2)
        except OSError:
            client.close()  # the backend is down: the client sees its connection end
            return
        upstream.settimeout(None)
        pair = _Pair(client, upstream)
        with self.lock:
            keep = not self.closed.is_set() and backend == self.backend
            if keep:
                self.pairs.add(pair)
        if not keep:  # switched (or stopped) meanwhile
            client.close()
            upstream.close()
            return
        self._spawn(pair.pump, client, upstream, self._forget)
        self._spawn(pair.pump, upstream, client, self._forget)

    def _forget(self, pair: _Pair) -> None:
        with self.lock:
            self.pairs.discard(pair)

    def switch(self, backend: int) -> None:
        """Forward new connections to backend and drop the open ones."""
        with self.lock:
            self.backend = backend
            open_pairs = list(self.pairs)
        for pair in open_pairs:
            pair.cut()

    def stop(self) -> None:
        """Stop accepting, drop every connection and wait for the threads."""
        self.closed.set()
        with self.lock:
            open_pairs = list(self.pairs)
            threads = list(self.threads)
        for pair in open_pairs:
            pair.cut()
        for thread in threads:
            thread.join(10)
        self.listener.close()
