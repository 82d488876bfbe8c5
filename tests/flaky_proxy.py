"""A TCP proxy on 127.0.0.1 that breaks report uploads at seeded random points.

For each request that starts `POST /api/reports` (or another of the prefixes given, such as
the requests of an upload with attachments), a seeded random draw decides its fate:
- cut the request part-way (the server sees a truncated request and stores nothing);
- pass the request but drop the answer (the server stored the report; the client never
  hears so: the case exactly-once delivery must survive);
- or pass it untouched.
Everything else (pages, scripts) passes untouched. Same seed, same sequence of fates.
"""

from __future__ import annotations

import random
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress

UPLOAD = b"POST /api/reports"


class FlakyProxy:
    def __init__(self, upstream_port: int, *, seed: int, cut: float = 0.3, drop: float = 0.3,
                 prefixes: tuple[bytes, ...] = (UPLOAD,)):
        self.upstream = ("127.0.0.1", upstream_port)
        self.prefixes = prefixes
        self.rng = random.Random(seed)  # noqa: S311  (seeded on purpose: a repeatable fault sequence)
        self.cut, self.drop = cut, drop
        self.fates: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closing = False

    def _fate(self, chunk_len: int) -> tuple[str, int]:
        with self.lock:
            roll = self.rng.random()
            keep = self.rng.randrange(max(chunk_len, 1))
            fate = "cut" if roll < self.cut else "drop" if roll < self.cut + self.drop else "pass"
            self.fates[fate] += 1
            return fate, keep

    def serve(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        dropping = threading.Event()

        def close_both() -> None:
            for s in (client, server):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

        def upstream_to_client() -> None:
            try:
                while chunk := server.recv(65536):
                    if dropping.is_set():
                        # The server answered (and stored the report); the client never
                        # hears it.
                        close_both()
                        return
                    client.sendall(chunk)
            except OSError:
                pass
            close_both()

        threading.Thread(target=upstream_to_client, daemon=True).start()
        try:
            while chunk := client.recv(65536):
                if chunk.startswith(self.prefixes):
                    fate, keep = self._fate(len(chunk))
                    if fate == "cut":
                        server.sendall(chunk[:keep])
                        close_both()
                        return
                    if fate == "drop":
                        dropping.set()
                server.sendall(chunk)
        except OSError:
            pass
        close_both()

    def close(self) -> None:
        self.closing = True
        self.listener.close()


@contextmanager
def flaky_proxy(upstream_port: int, *, seed: int, cut: float = 0.3, drop: float = 0.3,
                prefixes: tuple[bytes, ...] = (UPLOAD,)) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(upstream_port, seed=seed, cut=cut, drop=drop, prefixes=prefixes)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.close()
        thread.join(timeout=5)
