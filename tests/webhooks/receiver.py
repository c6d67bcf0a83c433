"""A real HTTP receiver on loopback for webhook tests: records every request it gets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import standardwebhooks

from ..servers import free_port


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> Any:
        """The body as verified by the standardwebhooks package (raises if it does not verify)."""
        return standardwebhooks.Webhook(secret).verify(self.body, self.headers)


# (status, headers, body) for the n-th request (0-based) and what it carried.
Answer = Callable[[int, Received], tuple[int, dict[str, str], bytes]]


def answer_ok(number: int, received: Received) -> tuple[int, dict[str, str], bytes]:
    return 204, {}, b""


@dataclass
class Receiver:
    answer: Answer = answer_ok
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                got = Received(
                    {name.lower(): value for name, value in self.headers.items()},
                    self.rfile.read(length),
                )
                with receiver._lock:
                    number = len(receiver.received)
                    receiver.received.append(got)
                status, headers, body = receiver.answer(number, got)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self) -> list[bytes]:
        return [got.body for got in self.received]
