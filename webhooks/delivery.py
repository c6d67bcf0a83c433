"""Sending the outbox: Standard Webhooks signatures, retries, ordering and the delivery log.

A run claims due messages for a while (``locked_until``), sends each, and records
the attempt. At least once: a run that dies mid-send lets go of its messages when
their hold ends, and the next run sends them again under the same ``webhook-id``,
which receivers de-duplicate by. A person's messages to one endpoint go in sequence
order: a message is due only when no earlier message of the same person to the same
endpoint is still pending.

The retry schedule is Svix's: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
10 h after each failure, each delay stretched or shrunk by up to a tenth at random
(so receivers coming back are not hit by every sender at the same moment); a 429 or
5xx with ``Retry-After`` waits at least that long. After the last try the message
is failed (the dead letters, replayable). A 410 disables the endpoint at once, and
five days of failures without a success disable it too.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import urllib3
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from leadrecord.bulk import rows_insert
from leadrecord.errors import InvalidInput
from leadrecord.ledger import LEDGER_COLUMNS, WrittenEntry
from leadrecord.models import LedgerEntry

from . import services
from .addresses import Target, url_target
from .events import entry_data
from .models import Attempt, AttemptStatus, Endpoint, Message, MessageRange, MessageStatus
from .outbox import messages_expand

logger = logging.getLogger(__name__)

RETRY_SCHEDULE = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
JITTER = 0.1
# A Retry-After longer than this is taken as this: a receiver cannot park a message
# beyond the schedule's own span.
RETRY_AFTER_MAX = timedelta(hours=24)
DISABLE_AFTER_FAILING = timedelta(days=5)
# What the log keeps of a response body.
EXCERPT_CHARS = 1000
# Read of a response body at most; a longer one is cut and its connection dropped.
_READ_BYTES = 64 * 1024
# Messages claimed per round: enough to keep the connections busy, few enough that a
# dead run holds little back.
BATCH = 250
# Sends at once in a round, over as many connections per endpoint: a round holds at
# most one message per person, so order per person stays; a receiver's latency is
# then paid once per few messages.
SENDERS = 4


def lease() -> timedelta:
    """How long a run holds the messages it claimed: a send is bounded by the timeout."""
    return timedelta(seconds=2 * settings.WEBHOOKS_TIMEOUT_SECONDS + 5)


def retry_delay(attempts: int, *, retry_after: float | None = None) -> timedelta:
    """The wait after the ``attempts``-th failed try (1-based), with jitter."""
    base = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE) - 1)]
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 -- jitter, not secrecy
    if retry_after is not None:
        delay = max(delay, min(timedelta(seconds=retry_after), RETRY_AFTER_MAX))
    return delay


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of "id.timestamp.body" per secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    parts = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        parts.append("v1," + base64.b64encode(digest).decode())
    return " ".join(parts)


def signing_secrets(endpoint: Endpoint, now: datetime) -> list[str]:
    """The current secret, and the previous one during its 24 hours after a rotation."""
    found = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until
        and (endpoint.previous_secret_until > now)
    ):
        found.append(endpoint.previous_secret)
    return found


def messages_data_fill(messages: list[Message]) -> None:
    """Give the messages written without data (``BUILT_FROM_ENTRY``) their data, built
    from their ledger entries (read at once), on these instances only: the entry never
    changes, so each try and replay builds the same."""
    thin = [message for message in messages if message.data is None]
    if not thin:
        return
    body_columns = LEDGER_COLUMNS[1:-2]  # occurred_at .. reason, as WrittenEntry reads them
    entries = {
        row[0]: WrittenEntry(row[0], row[1:])
        for row in LedgerEntry.objects.filter(
            seq__in={message.ledger_seq for message in thin}
        ).values_list("seq", *body_columns)
    }
    for message in thin:
        message.data = entry_data(entries[message.ledger_seq], message.event_type)


def message_body(message: Message) -> bytes:
    """The JSON body: ``{"type", "timestamp", "data"}``, compact, exactly what is signed."""
    if message.data is None:
        messages_data_fill([message])
    data: dict[str, Any] = {**(message.data or {}), **(message.personal or {})}
    data["ledger_seq"] = message.ledger_seq
    data["sequence"] = message.sequence
    body = {
        "type": message.event_type,
        "timestamp": message.timestamp.astimezone(UTC).isoformat(timespec="microseconds"),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Outcome:
    code: int | None = None
    excerpt: str = ""
    error: str = ""
    retry_after: float | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass
class Sender:
    """Connections of one run, kept alive per checked target, shared by its send threads."""

    pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = field(default_factory=dict)

    def pool(self, target: Target) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, target.host, target.port, target.address)
        if key not in self.pools:
            timeout = urllib3.Timeout(total=settings.WEBHOOKS_TIMEOUT_SECONDS)
            options: dict[str, Any] = {
                "timeout": timeout,
                "retries": False,
                "maxsize": SENDERS,
                "block": True,
            }
            if target.scheme == "https":
                self.pools[key] = urllib3.HTTPSConnectionPool(
                    target.address,
                    target.port,
                    server_hostname=target.host,
                    assert_hostname=target.host,
                    **options,
                )
            else:
                self.pools[key] = urllib3.HTTPConnectionPool(target.address, target.port, **options)
        return self.pools[key]

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()

    def send(
        self, endpoint: Endpoint, target: Target | str, message: Message, now: datetime
    ) -> Outcome:
        """One try; ``target`` is where the endpoint's URL resolved this round, or why it
        was refused."""
        started = time.monotonic()
        if isinstance(target, str):
            outcome = Outcome(error=target[:300])
        else:
            outcome = self._send(endpoint, target, message, now)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        return outcome

    def _send(self, endpoint: Endpoint, target: Target, message: Message, now: datetime) -> Outcome:
        body = message_body(message)
        timestamp = int(time.time())
        default_port = 443 if target.scheme == "https" else 80
        host = target.host if target.port == default_port else f"{target.host}:{target.port}"
        if ":" in target.host:
            host = (
                f"[{target.host}]"
                if target.port == default_port
                else f"[{target.host}]:{target.port}"
            )
        headers = {
            "Host": host,
            "Content-Type": "application/json",
            "User-Agent": "LeadRecord-Webhooks/1",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                signing_secrets(endpoint, now), message.id, timestamp, body
            ),
        }
        try:
            response = self.pool(target).urlopen(
                "POST",
                target.path,
                body=body,
                headers=headers,
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.HTTPError as problem:
            return Outcome(error=f"{type(problem).__name__}: {problem}"[:300])
        try:
            content = response.read(_READ_BYTES)
            finished = response.length_remaining in (None, 0) and len(content) < _READ_BYTES
        except urllib3.exceptions.HTTPError as problem:
            response.close()
            return Outcome(code=response.status, error=f"{type(problem).__name__}: {problem}"[:300])
        if finished:
            response.release_conn()
        else:
            response.close()
        return Outcome(
            code=response.status,
            excerpt=content.decode("utf-8", "replace")[:EXCERPT_CHARS],
            retry_after=_retry_after(response.headers.get("Retry-After"), now)
            if response.status == 429 or response.status >= 500
            else None,
        )


def _due(now: datetime) -> Any:
    earlier_pending = Message.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        contact_id=OuterRef("contact_id"),
        sequence__lt=OuterRef("sequence"),
        status=MessageStatus.PENDING,
    )
    # A range not written out yet may hold an earlier message of the same person: a
    # range committed after this run wrote the ranges out, before a later message.
    earlier_unwritten = MessageRange.objects.filter(
        endpoint_id=OuterRef("endpoint_id"), first_sequence__lt=OuterRef("sequence")
    )
    return (
        Message.objects.filter(
            status=MessageStatus.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .exclude(Exists(earlier_pending))
        .exclude(Exists(earlier_unwritten))
    )


@contextmanager
def _sorts_off() -> Iterator[None]:
    """PostgreSQL walks the due index in its order and stops at the round's size while this
    block runs. A burst of new messages (a range just written out, a batch just committed)
    is not in the table's statistics yet: PostgreSQL then expects a few due messages and
    checks every one against the person index, sorting them all, in each round
    (bench/webhooks.py's delivery rate and delay). The setting is put back after the
    claim: a caller's transaction (one that sends as it commits, a test's) goes on with
    its own plans."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_sort'), set_config('enable_sort', 'off', true)"
        )
        previous = cursor.fetchone()[0]
    # On an error the caller's atomic block rolls back, and the setting with it.
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_sort', %s, true)", [previous])


def messages_claim(*, now: datetime, limit: int = BATCH) -> list[Message]:
    """Take up to ``limit`` due messages for this run (others skip them until the hold ends)."""
    with transaction.atomic():
        with _sorts_off():
            claimed = list(
                _due(now)
                .select_for_update(skip_locked=True, of=("self",))
                # The partial index of pending messages by due time, not the (endpoint,
                # sequence) one: that walks every message ever delivered. Order per person
                # is the NOT EXISTS above.
                .order_by("next_attempt_at")[:limit]
            )
        if claimed:
            Message.objects.filter(pk__in=[m.pk for m in claimed]).update(
                locked_until=now + lease()
            )
    return claimed


@dataclass
class _Sent:
    message: Message
    endpoint: Endpoint
    outcome: Outcome
    at: datetime


_ATTEMPT_COLUMNS = (
    "message_id",
    "endpoint_id",
    "attempted_at",
    "status",
    "response_code",
    "response_excerpt",
    "error",
    "duration_ms",
    "replay",
)


def _attempt_row(sent: _Sent) -> list[Any]:
    outcome = sent.outcome
    return [
        sent.message.pk,
        sent.endpoint.pk,
        sent.at,
        (AttemptStatus.SUCCEEDED if outcome.ok else AttemptStatus.FAILED).value,
        outcome.code,
        outcome.excerpt,
        outcome.error,
        outcome.duration_ms,
        sent.message.replays > 0,
    ]


def _failure_record(sent: _Sent) -> None:
    message, endpoint, outcome, now = sent.message, sent.endpoint, sent.outcome, sent.at
    attempts = message.attempts + 1
    if outcome.code == 410:
        # Gone: the receiver asks for no more. The message waits for the endpoint.
        Message.objects.filter(pk=message.pk).update(
            attempts=attempts, locked_until=None, last_response_code=410, next_attempt_at=now
        )
        services.endpoint_disable(endpoint=endpoint, reason="The receiver answered 410 Gone.")
        return
    exhausted = attempts >= len(RETRY_SCHEDULE)
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED if exhausted else MessageStatus.PENDING,
        attempts=attempts,
        locked_until=None,
        last_response_code=outcome.code,
        next_attempt_at=now + retry_delay(attempts, retry_after=outcome.retry_after),
    )
    if endpoint.failing_since is None:
        Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
            failing_since=now
        )
        endpoint.failing_since = now
    elif now - endpoint.failing_since >= DISABLE_AFTER_FAILING:
        services.endpoint_disable(endpoint=endpoint, reason="Every delivery failed for 5 days.")


def _record(batch: list[_Sent]) -> None:
    """The attempts in the log, and what follows for their messages and endpoints: the
    successes of a round in a few statements, each failure on its own."""
    if not batch:
        return
    with transaction.atomic():
        # A round's attempts in one statement, without a model instance each.
        rows_insert(Attempt, _ATTEMPT_COLUMNS, [_attempt_row(sent) for sent in batch])
        delivered: dict[int, list[str]] = {}
        recovered: set[int] = set()
        for sent in batch:
            if sent.outcome.ok:
                delivered.setdefault(sent.outcome.code or 200, []).append(sent.message.pk)
                recovered.add(sent.endpoint.pk)
                sent.endpoint.failing_since = None
        moment = batch[-1].at
        for code, ids in delivered.items():
            Message.objects.filter(pk__in=ids).update(
                status=MessageStatus.DELIVERED,
                attempts=F("attempts") + 1,
                delivered_at=moment,
                locked_until=None,
                last_response_code=code,
            )
        if recovered:
            # Asked of the database, not of this round's copies of the endpoints: the
            # round before may have set it since they were read (rounds overlap).
            Endpoint.objects.filter(pk__in=recovered, failing_since__isnull=False).update(
                failing_since=None
            )
        for sent in batch:
            if not sent.outcome.ok:
                _failure_record(sent)


def _targets(endpoints: dict[int, Endpoint]) -> dict[int, Target | str]:
    """Where each endpoint's URL resolves now, checked (or why it is refused), per round."""
    found: dict[int, Target | str] = {}
    for endpoint in endpoints.values():
        try:
            found[endpoint.pk] = url_target(endpoint.url)
        except InvalidInput as refused:
            found[endpoint.pk] = refused.detail
    return found


def _send_one(
    sender: Sender,
    endpoints: dict[int, Endpoint],
    targets: dict[int, Target | str],
    now: datetime | None,
    message: Message,
) -> _Sent:
    endpoint = endpoints[message.endpoint_id]
    sent_at = now or timezone.now()
    outcome = sender.send(endpoint, targets[endpoint.pk], message, sent_at)
    return _Sent(message, endpoint, outcome, sent_at)


@dataclass
class _Round:
    """A round's messages on their way: each one's send, in the sender threads."""

    sends: list[Future[_Sent]]


def _round_start(
    senders: ThreadPoolExecutor, sender: Sender, now: datetime | None
) -> _Round | None:
    """Write out the pending ranges, claim due messages and hand them to the sender
    threads; None: nothing was due."""
    messages_expand()
    claimed = messages_claim(now=now or timezone.now())
    if not claimed:
        return None
    endpoints = {
        endpoint.pk: endpoint
        for endpoint in Endpoint.objects.filter(pk__in={m.endpoint_id for m in claimed})
    }
    targets = _targets(endpoints)
    sendable = [m for m in claimed if endpoints[m.endpoint_id].enabled]
    # Here, not in the sender threads: they touch no database.
    messages_data_fill(sendable)
    idle = [m.pk for m in claimed if not endpoints[m.endpoint_id].enabled]
    if idle:
        Message.objects.filter(pk__in=idle).update(locked_until=None)
    send = functools.partial(_send_one, sender, endpoints, targets, now)
    return _Round([senders.submit(send, message) for message in sendable])


def deliveries_run(*, now: datetime | None = None, max_seconds: float = 60.0) -> int:
    """Send due messages until none is left (or ``max_seconds`` pass); returns attempts made.

    Rounds overlap: while one round's messages are being sent, the next round is
    claimed and handed to the senders, and then the first round's outcomes are recorded,
    so the senders do not wait for the database between rounds. A round claimed while
    another is on its way holds none of the same people's later messages (they wait
    behind the pending ones), so order per person stays.
    """
    deadline = time.monotonic() + max_seconds
    sender = Sender()
    made = 0
    try:
        with ThreadPoolExecutor(SENDERS, thread_name_prefix="webhooks-send") as senders:
            on_the_way: _Round | None = None
            while True:
                started = None
                if time.monotonic() < deadline:
                    started = _round_start(senders, sender, now)
                if on_the_way is not None:
                    batch = [send.result() for send in on_the_way.sends]
                    _record(batch)
                    made += len(batch)
                elif started is None:
                    break
                # Nothing new was due: ask again now that the round before is recorded
                # (its people's next messages are due now), unless it was the last.
                on_the_way = started
                if started is None and time.monotonic() >= deadline:
                    break
    finally:
        sender.close()
    return made
