"""The demo's webhook endpoint, with a delivery log to read from the first page view.

A receiver stands in for a CRM while ``seed_demo`` runs: a small HTTP server on a
loopback port, which takes the deliveries of the demo's last changes and is gone
afterwards. The endpoint stays: changes made in the demo are then tried, fail and
are retried on the schedule, which the endpoint's page shows too.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from leadrecord.errors import InvalidInput
from leadrecord.ledger import Actor
from webhooks.models import Endpoint
from webhooks.services import endpoint_create

DEMO_EVENTS = [
    "touch.recorded",
    "handoff.created",
    "handoff.accepted",
    "handoff.rejected",
    "deal.created",
    "sale.recorded",
    "attribution.run_completed",
]


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b'{"received": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def demo_receiver() -> Iterator[str]:
    """A receiver on a free loopback port while the block runs; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/demo-crm/hooks"
    finally:
        server.shutdown()
        server.server_close()


def demo_endpoint_seed(*, url: str, actor: Actor) -> str:
    """The demo CRM's endpoint (once); what was done, in a line."""
    if Endpoint.objects.exists():
        return "an endpoint exists; none added"
    try:
        endpoint, _ = endpoint_create(
            url=url, event_types=DEMO_EVENTS, audience="marketing", actor=actor
        )
    except InvalidInput as refused:
        return f"not added ({refused.detail} Set WEBHOOKS_ALLOW_LOOPBACK=1 for the demo.)"
    return f"endpoint #{endpoint.pk} for marketing's CRM at {url}"
