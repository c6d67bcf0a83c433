"""Delivery by a real Celery worker: sent after the commit, and nothing lost when a worker
is killed mid-delivery (acks late; the same message id goes out again)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
from django.utils import timezone

from contacts import services as contact_services
from contacts.models import Channel
from events.ingest import events_ingest
from leadrecord.ledger import Actor
from tests.factories import contact_make
from webhooks import services
from webhooks.delivery import lease
from webhooks.models import Message, MessageRange, MessageStatus
from webhooks.tasks import deliveries_send_task, kicker

from ..workers import celery_worker_process
from .receiver import Received, Receiver

SYSTEM = Actor.system("webhook tests")


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_committed_change_is_delivered_by_the_worker(receiver: Receiver) -> None:
    _, secret = services.endpoint_create(
        url=receiver.url, event_types=["touch.recorded"], audience="sales", actor=SYSTEM
    )
    person = contact_make()
    with celery_worker_process():
        contact_services.touch_record(
            contact=person, channel=Channel.objects.get(key="web"), actor=SYSTEM
        )
        _wait_for(lambda: len(receiver.received) == 1, "the worker delivered the touch")
        _wait_for(
            lambda: Message.objects.filter(status=MessageStatus.DELIVERED).count() == 1,
            "the delivery was recorded",
        )
    assert receiver.received[0].verified(secret)["data"]["contact"] == person.pk


def _kill_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its pool processes: nothing runs its clean-up."""
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(worker.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in [worker.pid, *map(int, children)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.wait(timeout=20)


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_loses_nothing(settings) -> None:
    release = threading.Event()

    def hang_first(number: int, got: Received) -> tuple[int, dict[str, str], bytes]:
        if number == 0:
            release.wait(30)  # the worker dies while this request is open
        return 204, {}, b""

    receiver = Receiver(answer=hang_first).start()
    timeout = 3
    settings.WEBHOOKS_TIMEOUT_SECONDS = timeout
    env = {"WEBHOOKS_TIMEOUT_SECONDS": str(timeout)}
    try:
        services.endpoint_create(
            url=receiver.url, event_types=["touch.recorded"], audience="sales", actor=SYSTEM
        )
        with celery_worker_process(env=env) as worker:
            contact_services.touch_record(
                contact=contact_make(), channel=Channel.objects.get(key="web"), actor=SYSTEM
            )
            _wait_for(lambda: len(receiver.received) == 1, "the first send reached the receiver")
            killed_at = timezone.now()
            _kill_worker(worker)
        release.set()
        message = Message.objects.get()
        assert message.status == MessageStatus.PENDING  # sent, but never recorded as such
        with celery_worker_process(env=env):
            # What beat does every few seconds: a run finds the message once its hold ends.
            remaining = (killed_at + lease() - timezone.now()).total_seconds()
            time.sleep(max(0.0, remaining) + 0.5)
            deliveries_send_task.delay()
            _wait_for(lambda: len(receiver.received) >= 2, "the message went out again")
            _wait_for(
                lambda: Message.objects.filter(status=MessageStatus.DELIVERED).exists(),
                "the second send was recorded",
            )
        assert {got.id for got in receiver.received} == {message.id}
    finally:
        release.set()
        receiver.stop()


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_kicks_coalesce_and_every_change_is_still_delivered(receiver: Receiver) -> None:
    """A process asks for a run at most once per interval, from its own thread: many
    commits in a row cost few broker sends, and the last of them still gets its run (no
    beat here, no task sent by hand)."""
    _, secret = services.endpoint_create(
        url=receiver.url, event_types=["touch.recorded"], audience="sales", actor=SYSTEM
    )
    people = [contact_make() for _ in range(5)]
    web = Channel.objects.get(key="web")
    commits = 40
    with celery_worker_process():
        sends_before = kicker.sends
        for number in range(commits):
            contact_services.touch_record(contact=people[number % 5], channel=web, actor=SYSTEM)
        _wait_for(
            lambda: Message.objects.filter(status=MessageStatus.DELIVERED).count() == commits,
            "every message delivered",
        )
        sends = kicker.sends - sends_before
    assert 1 <= sends < commits
    ids = {got.id for got in receiver.received}
    assert ids == set(Message.objects.values_list("id", flat=True))
    for person in people:
        theirs = [
            body["data"]["sequence"]
            for body in (got.verified(secret) for got in receiver.received)
            if body["data"]["contact"] == person.pk
        ]
        assert theirs == sorted(theirs) and len(theirs) == commits // 5


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_bulk_batchs_range_is_written_out_and_delivered_by_the_worker(
    receiver: Receiver,
) -> None:
    """A bulk batch writes a range; the worker's run writes it out and sends each
    message once, numbered without gaps in ledger order, each person's in order."""
    _, secret = services.endpoint_create(
        url=receiver.url,
        event_types=["touch.recorded", "contact.created"],
        audience="sales",
        actor=SYSTEM,
    )
    events = [
        {
            "type": "touch",
            "source_system": "web",
            "external_id": f"w-{number}",
            "occurred_at": "2026-11-01T10:00:00+00:00",
            "contact": {"email": f"worker{number % 6}@example.com"},
            "channel": "web",
        }
        for number in range(120)
    ]
    with celery_worker_process():
        assert events_ingest(events=events, actor=SYSTEM).body["created"] == 120
        _wait_for(
            lambda: Message.objects.filter(status=MessageStatus.DELIVERED).count() == 126,
            "every message of the batch delivered",
        )
    assert not MessageRange.objects.exists()
    bodies = [got.verified(secret) for got in receiver.received]
    assert len({got.id for got in receiver.received}) == len(bodies) == 126
    assert sorted(b["data"]["sequence"] for b in bodies) == list(range(1, 127))
    by_sequence = sorted(bodies, key=lambda b: b["data"]["sequence"])
    seqs = [b["data"]["ledger_seq"] for b in by_sequence]
    assert seqs == sorted(seqs)
    assert [b["type"] for b in by_sequence].count("contact.created") == 6
    for person in {b["data"]["contact"] for b in bodies}:
        arrived = [b["data"]["sequence"] for b in bodies if b["data"]["contact"] == person]
        assert arrived == sorted(arrived) and len(arrived) == 21
