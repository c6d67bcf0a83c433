"""Helpers for the buyer's side: a published form, and a person filling it in."""

from __future__ import annotations

import email
import html
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from typing import Any

import environ
import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from buyers import services
from buyers.models import BuyerForm
from contacts.models import Campaign, Channel
from contacts.services import campaign_create
from leadrecord.ledger import Actor

SYSTEM = Actor.system("test")
CONSENTS = [
    {"purpose": "marketing_email", "notice": "Send me product news.", "version": "2026-03"},
    {"purpose": "analytics", "notice": "Remember my visits.", "version": "a1"},
    {"purpose": "sales_contact", "notice": "Sales may call me.", "version": "s1"},
]
DISCLOSURES = [
    {"key": "journey_stage", "label": "Where are you?"},
    {"key": "budget", "label": "Budget"},
    {"key": "timeline", "label": "Timeline"},
]


@pytest.fixture(autouse=True)
def _counts_start_afresh() -> Iterator[None]:
    """Rate-limit counts live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def campaign(db: None) -> Campaign:
    return campaign_create(
        name="Spring search",
        channel=Channel.objects.get(key="paid_search"),
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="spring-2026",
        actor=SYSTEM,
    )


@pytest.fixture
def buyer_form(db: None) -> BuyerForm:
    return services.buyer_form_create(
        slug="demo-request",
        title="Ask for a demo",
        consents=CONSENTS,
        disclosures=DISCLOSURES,
        actor=SYSTEM,
    )


def hidden_fields(page: Any) -> dict[str, str]:
    """The hidden fields a browser sends back with the form."""
    found = re.findall(
        r'<input type="hidden" name="([^"]+)"(?: value="([^"]*)")?', page.content.decode()
    )
    return {name: html.unescape(value) for name, value in found}


def send(
    client: Client,
    slug: str,
    data: dict[str, str],
    *,
    query: str = "",
    wait: float = 10,
    path: str = "",
    **extra: Any,
) -> Any:
    """Open the form, take the time a person takes, and send it (as a browser would)."""
    url = f"/f/{slug}/{path}"
    # The page was shown ``wait`` seconds ago; the post is now, so what it records
    # is not dated in the future of what the test does next.
    with time_machine.travel(timezone.now().timestamp() - wait, tick=True):
        page = client.get(url + query, **extra)
    assert page.status_code == 200, page.content
    body = {**hidden_fields(page), **data}
    assert body.get("lr_t"), "the form carries its timing field"
    return client.post(f"/f/{slug}/", body, **extra)


class Inbox:
    """What a real SMTP server (aiosmtpd) received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def link(self) -> str:
        """The sign-in link in the latest message's plain text."""
        plain = next(
            part.get_payload(decode=True)
            for part in self.messages[-1].walk()
            if part.get_content_type() == "text/plain"
        )
        assert isinstance(plain, bytes)
        match = re.search(r"http://[^\s]+/me/enter/[^/\s]+/", plain.decode())
        assert match, plain
        return match.group(0)


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, dict[str, Any]]]:
    """An SMTP server on a free loopback port, and the settings ``EMAIL_URL`` gives for it."""
    handler = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, environ.Env.email_url_config(f"smtp://127.0.0.1:{port}")
    finally:
        controller.stop()
