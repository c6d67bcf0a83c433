"""Ranges: a bulk batch writes one row per endpoint, and delivery writes its messages out.

On PostgreSQL a batch of events built from their ledger entries (bulk touches and their
new people) writes one ``MessageRange`` per endpoint in the batch's transaction, holding
the endpoint's sequence numbers; delivery writes each range out as its messages, once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from contacts import services as contact_services
from contacts.models import Channel, Contact
from events.ingest import events_ingest
from leadrecord.ledger import Actor
from leadrecord.models import LedgerAction, LedgerEntry
from tests.factories import contact_make
from webhooks import selectors, services, tasks
from webhooks.delivery import deliveries_run, messages_claim
from webhooks.models import Endpoint, Message, MessageRange, MessageStatus
from webhooks.outbox import EXPAND_RANGES, messages_expand

from .receiver import Receiver

pytestmark = pytest.mark.postgres

SYSTEM = Actor.system("webhook range tests")
EVENT_OF_ACTION: dict[str, str] = {
    LedgerAction.TOUCH_RECORD: "touch.recorded",
    LedgerAction.CONTACT_CREATE: "contact.created",
}


def _endpoint(url: str, event_types: list[str]) -> tuple[Endpoint, str]:
    return services.endpoint_create(
        url=url, event_types=event_types, audience="marketing", actor=SYSTEM
    )


def _touches(count: int, people: int, prefix: str = "t") -> list[dict[str, Any]]:
    return [
        {
            "type": "touch",
            "source_system": "web",
            "external_id": f"{prefix}-{number}",
            "occurred_at": "2026-11-01T10:00:00+00:00",
            "contact": {"email": f"{prefix}{number % people}@example.com"},
            "channel": "web",
        }
        for number in range(count)
    ]


def _ingest(events: list[dict[str, Any]]) -> None:
    answer = events_ingest(events=events, actor=SYSTEM)
    assert answer.body["created"] == len(events), answer.body


def _messages_of(endpoint: Endpoint) -> list[Message]:
    return list(Message.objects.filter(endpoint=endpoint).order_by("sequence"))


def _in_ledger_order_without_gaps(endpoint: Endpoint, wanted: set[str]) -> list[Message]:
    """The endpoint's messages: one per wanted ledger entry, numbered 1.. in ledger order."""
    messages = _messages_of(endpoint)
    assert [m.sequence for m in messages] == list(range(1, len(messages) + 1))
    entries = dict(
        LedgerEntry.objects.filter(
            action__in=[a for a, e in EVENT_OF_ACTION.items() if e in wanted]
        ).values_list("seq", "action")
    )
    assert [m.ledger_seq for m in messages] == sorted(entries)
    assert [m.event_type for m in messages] == [
        EVENT_OF_ACTION[entries[m.ledger_seq]] for m in messages
    ]
    return messages


@pytest.mark.django_db
def test_a_bulk_batch_writes_a_range_per_endpoint_then_one_message_per_event() -> None:
    receivers = [Receiver().start(), Receiver().start()]
    try:
        both, both_secret = _endpoint(receivers[0].url, ["contact.created", "touch.recorded"])
        touches, touch_secret = _endpoint(receivers[1].url, ["touch.recorded"])
        _ingest(_touches(30, people=4))
        # In the batch's transaction: a range row per endpoint, not a message each.
        assert not Message.objects.exists()
        ranges = {r.endpoint_id: r for r in MessageRange.objects.all()}
        assert {pk: (r.first_sequence, r.count) for pk, r in ranges.items()} == {
            both.pk: (1, 34),
            touches.pk: (1, 30),
        }
        both.refresh_from_db()
        touches.refresh_from_db()
        assert (both.last_sequence, touches.last_sequence) == (34, 30)
        # Shown as pending before they are written out.
        pending = {e.pk: getattr(e, "pending") for e in selectors.endpoints_all()}  # noqa: B009
        assert pending == {both.pk: 34, touches.pk: 30}
        assert selectors.messages_pending_count() == 64

        assert messages_expand() == 64
        assert not MessageRange.objects.exists()
        assert selectors.messages_pending_count() == 64
        _in_ledger_order_without_gaps(both, {"contact.created", "touch.recorded"})
        _in_ledger_order_without_gaps(touches, {"touch.recorded"})
        assert len(set(Message.objects.values_list("id", flat=True))) == 64
        # Written at the time of the change, due since.
        for endpoint_id, written in ranges.items():
            assert set(
                Message.objects.filter(endpoint_id=endpoint_id).values_list(
                    "created_at", "next_attempt_at"
                )
            ) == {(written.created_at, written.created_at)}

        # A single write after it is numbered after the range.
        contact_services.touch_record(
            contact=Contact.objects.order_by("pk")[0],
            channel=Channel.objects.get(key="email"),
            actor=SYSTEM,
        )
        assert (_messages_of(both)[-1].sequence, _messages_of(touches)[-1].sequence) == (35, 31)
        assert deliveries_run() == 66
        expected = ((receivers[0], both_secret, 35), (receivers[1], touch_secret, 31))
        for server, secret, count in expected:
            bodies = [got.verified(secret) for got in server.received]
            assert sorted(b["data"]["sequence"] for b in bodies) == list(range(1, count + 1))
            for person in {b["data"]["contact"] for b in bodies}:
                theirs = [b["data"]["sequence"] for b in bodies if b["data"]["contact"] == person]
                assert theirs == sorted(theirs)
    finally:
        for server in receivers:
            server.stop()


@pytest.mark.django_db
def test_ranges_of_batches_and_single_writes_interleave_in_ledger_order() -> None:
    """Single writes' messages go in at once, batches' as ranges: whatever order they
    are written out in, each endpoint's numbers follow the ledger."""
    endpoint, _ = _endpoint("http://127.0.0.1:9/hooks", ["touch.recorded"])
    person = contact_make()
    web = Channel.objects.get(key="web")
    contact_services.touch_record(contact=person, channel=web, actor=SYSTEM)
    _ingest(_touches(5, people=2, prefix="a"))
    contact_services.touch_record(contact=person, channel=web, actor=SYSTEM)
    _ingest(_touches(7, people=3, prefix="b"))
    contact_services.touch_record(contact=person, channel=web, actor=SYSTEM)
    assert [m.sequence for m in _messages_of(endpoint)] == [1, 7, 15]
    assert sorted(MessageRange.objects.values_list("first_sequence", "count")) == [(2, 5), (8, 7)]
    assert messages_expand() == 12
    _in_ledger_order_without_gaps(endpoint, {"touch.recorded"})


@pytest.mark.django_db
def test_writing_out_twice_writes_nothing_more() -> None:
    _endpoint("http://127.0.0.1:9/hooks", ["touch.recorded"])
    _ingest(_touches(20, people=3))
    assert messages_expand() == 20
    ids = set(Message.objects.values_list("id", flat=True))
    assert messages_expand() == 0
    assert set(Message.objects.values_list("id", flat=True)) == ids
    # A batch after that: only its own messages are written.
    _ingest(_touches(4, people=3, prefix="later"))
    assert messages_expand() == 4
    assert Message.objects.count() == 24


@pytest.mark.django_db
def test_a_rolled_back_batch_leaves_no_range() -> None:
    endpoint, _ = _endpoint("http://127.0.0.1:9/hooks", ["touch.recorded", "contact.created"])
    with pytest.raises(RuntimeError), transaction.atomic():
        _ingest(_touches(10, people=2))
        assert MessageRange.objects.count() == 1
        raise RuntimeError("the change fails after its writes")
    assert not MessageRange.objects.exists()
    endpoint.refresh_from_db()
    assert endpoint.last_sequence == 0
    assert messages_expand() == 0
    assert not Message.objects.exists()
    # The next batch starts from 1.
    _ingest(_touches(3, people=1, prefix="next"))
    assert messages_expand() == 4
    assert [m.sequence for m in _messages_of(endpoint)] == [1, 2, 3, 4]


@pytest.mark.django_db
def test_a_disabled_endpoint_gets_no_range_and_a_range_it_had_waits() -> None:
    endpoint, _ = _endpoint("http://127.0.0.1:9/hooks", ["touch.recorded"])
    _ingest(_touches(3, people=1, prefix="before"))
    services.endpoint_disable(endpoint=endpoint, reason="test")
    _ingest(_touches(3, people=1, prefix="after"))
    assert list(MessageRange.objects.values_list("count", flat=True)) == [3]
    assert messages_expand() == 3
    assert deliveries_run() == 0  # disabled: they wait
    assert Message.objects.filter(status=MessageStatus.PENDING).count() == 3


@pytest.mark.django_db
def test_a_later_message_waits_while_an_earlier_range_is_not_written_out(
    receiver: Receiver,
) -> None:
    """A range committed after a run wrote the ranges out, then a single write about the
    same person: the run claims neither until the range is written out, so the person's
    order holds."""
    endpoint, _ = _endpoint(receiver.url, ["touch.recorded"])
    _ingest(_touches(4, people=1, prefix="p"))
    person = Contact.objects.get()
    contact_services.touch_record(
        contact=person, channel=Channel.objects.get(key="web"), actor=SYSTEM
    )
    later = Message.objects.get()
    assert later.sequence == 5
    assert messages_claim(now=later.next_attempt_at) == []
    assert messages_expand() == 4
    claimed = messages_claim(now=later.next_attempt_at)
    assert [m.sequence for m in claimed] == [1]  # one per person, the earliest
    Message.objects.update(locked_until=None)
    assert deliveries_run() == 5
    assert [m.sequence for m in _messages_of(endpoint)] == [1, 2, 3, 4, 5]
    order = {got.id: number for number, got in enumerate(receiver.received)}
    assert sorted(order, key=order.__getitem__) == [m.id for m in _messages_of(endpoint)]


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``work`` on a connection of its own; its answer (or error) lands in the list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as error:  # handed to the test to assert on
            outcome.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.fixture
def no_delivery_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """No delivery run after each commit (in process, in these tests): it would write
    the ranges out before the test's own runs do."""
    monkeypatch.setattr(tasks, "deliveries_kick", lambda: None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_delivery_runs")
def test_concurrent_runs_write_each_range_out_once() -> None:
    endpoint, _ = _endpoint("http://127.0.0.1:9/hooks", ["touch.recorded", "contact.created"])
    # More ranges than one statement takes: the runs share them out.
    batches = EXPAND_RANGES + 5
    for batch in range(batches):
        _ingest(_touches(8, people=2, prefix=f"c{batch}"))
    assert MessageRange.objects.count() == batches
    start = threading.Barrier(3)

    def expand() -> int:
        start.wait()
        return messages_expand()

    runs = [_in_thread(expand) for _ in range(3)]
    for thread, _ in runs:
        thread.join(60)
    written = [outcome[0] for _, outcome in runs]
    assert all(isinstance(count, int) for count in written), written
    assert sum(written) == batches * (8 + 2)
    assert not MessageRange.objects.exists()
    messages = _in_ledger_order_without_gaps(endpoint, {"touch.recorded", "contact.created"})
    assert len({m.id for m in messages}) == len(messages) == batches * (8 + 2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_delivery_runs")
def test_a_run_killed_mid_write_out_loses_and_doubles_nothing() -> None:
    """A run's connection dies after it wrote the messages out, before its commit: the
    ranges are still there, another run skipped them meanwhile, and the next one writes
    them out once."""
    endpoint, _ = _endpoint("http://127.0.0.1:9/hooks", ["touch.recorded"])
    _ingest(_touches(50, people=5))
    written_out = threading.Event()
    release = threading.Event()

    def expand_then_hang() -> tuple[int, int]:
        with transaction.atomic():
            count = messages_expand()
            pid = cast(Any, connection.connection).get_backend_pid()
            written_out.set()
            release.wait(30)
            return count, pid

    thread, outcome = _in_thread(expand_then_hang)
    try:
        assert written_out.wait(30)
        assert messages_expand() == 0  # another run skips the range being written out
        assert not Message.objects.exists()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            (pid,) = cursor.fetchone()
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        release.set()
        thread.join(30)
    assert isinstance(outcome[0], OperationalError)  # its commit failed: the run died
    assert MessageRange.objects.count() == 1
    assert not Message.objects.exists()
    assert messages_expand() == 50
    assert messages_expand() == 0
    _in_ledger_order_without_gaps(endpoint, {"touch.recorded"})


@pytest.mark.django_db
def test_a_claim_inside_a_callers_transaction_leaves_its_plan_settings_as_they_were() -> None:
    """The claim walks the due index with sorts off; the caller's transaction (one that sends
    as it commits, a test's) goes on with sorts on."""
    with transaction.atomic():
        messages_claim(now=timezone.now())
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_sort")
            assert cursor.fetchone()[0] == "on"
