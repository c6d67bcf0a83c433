"""Delivery to a real receiver on loopback: outages, the retry schedule, 410 and 429,
ordering per person, replay, secret rotation and addresses refused at send time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import standardwebhooks
import time_machine
from django.utils import timezone

from contacts import services as contact_services
from contacts.models import Channel, Contact
from leadrecord.ledger import Actor
from leadrecord.models import LedgerAction, LedgerEntry
from tests.factories import contact_make
from webhooks import services
from webhooks.delivery import BATCH, EXCERPT_CHARS, RETRY_SCHEDULE, deliveries_run
from webhooks.models import Attempt, AttemptStatus, Endpoint, Message, MessageStatus

from .receiver import Received, Receiver

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("webhook tests")


def _endpoint(url: str, audience: str = "marketing") -> tuple[Endpoint, str]:
    return services.endpoint_create(
        url=url, event_types=["touch.recorded"], audience=audience, actor=SYSTEM
    )


def _touch(contact: Contact) -> None:
    contact_services.touch_record(
        contact=contact, channel=Channel.objects.get(key="web"), actor=SYSTEM
    )


def _answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"no"):
    def answer(number: int, received: Received) -> tuple[int, dict[str, str], bytes]:
        return status, headers or {}, body

    return answer


def test_a_receiver_down_then_back_gets_every_message_once_more_with_the_same_id() -> None:
    receiver = Receiver()  # not listening yet
    _, secret = _endpoint(receiver.url)
    ann, bo = contact_make(), contact_make()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(3):
            _touch(ann)
            _touch(bo)
        assert deliveries_run() == 2  # each person's first; the rest wait behind it
        heads = list(Message.objects.filter(attempts=1))
        assert len(heads) == 2
        for message in heads:
            assert message.status == MessageStatus.PENDING
            assert message.next_attempt_at - start == pytest.approx(
                RETRY_SCHEDULE[1], abs=RETRY_SCHEDULE[1] * 0.1
            )
        assert Attempt.objects.filter(status=AttemptStatus.FAILED, response_code=None).count() == 2
        assert deliveries_run() == 0  # nothing is due before the retry
    receiver.start()
    try:
        with time_machine.travel(start + timedelta(seconds=6), tick=False):
            assert deliveries_run() == 6
        expected = {
            person.pk: list(
                Message.objects.filter(contact_id=person.pk)
                .order_by("sequence")
                .values_list("id", flat=True)
            )
            for person in (ann, bo)
        }
        for person in (ann, bo):
            got = [
                r.id
                for r in receiver.received
                if json.loads(r.body)["data"]["contact"] == person.pk
            ]
            assert got == expected[person.pk]
        assert all(r.verified(secret) for r in receiver.received) is True
        assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.DELIVERED}
    finally:
        receiver.stop()


def test_replay_sends_exactly_the_chosen_ones_again_with_their_ids(receiver: Receiver) -> None:
    endpoint, _ = _endpoint(receiver.url)
    person = contact_make()
    for _ in range(4):
        _touch(person)
    deliveries_run()
    sent = [r.id for r in receiver.received]
    chosen = sent[1]
    assert services.messages_replay(endpoint=endpoint, actor=SYSTEM, message_ids=[chosen]) == 1
    deliveries_run()
    assert [r.id for r in receiver.received] == [*sent, chosen]
    assert receiver.received[-1].body == receiver.received[1].body
    replayed = Attempt.objects.get(replay=True)
    assert replayed.message_id == chosen and replayed.status == AttemptStatus.SUCCEEDED
    # A time range: the messages written in it.
    messages = list(Message.objects.order_by("sequence"))
    count = services.messages_replay(
        endpoint=endpoint,
        actor=SYSTEM,
        since=messages[0].created_at,
        until=messages[0].created_at + timedelta(microseconds=1),
    )
    assert count == sum(1 for m in messages if m.created_at == messages[0].created_at)
    # Every failed one: none failed here.
    assert services.messages_replay(endpoint=endpoint, actor=SYSTEM, failed=True) == 0
    entries = list(LedgerEntry.objects.filter(action=LedgerAction.WEBHOOK_REPLAY))
    assert len(entries) == 3 and (entries[0].after or {})["message_ids"] == [chosen]


def test_the_retry_schedule_then_the_dead_letters_then_replay_of_the_failed(
    receiver: Receiver,
) -> None:
    receiver.answer = _answer(500, body=b"x" * 5000)
    endpoint, _ = _endpoint(receiver.url)
    _touch(contact_make())
    message = Message.objects.get()
    moment = timezone.now()
    for attempt in range(1, len(RETRY_SCHEDULE) + 1):
        with time_machine.travel(moment, tick=False):
            assert deliveries_run() == 1
        message.refresh_from_db()
        assert message.attempts == attempt
        if attempt < len(RETRY_SCHEDULE):
            wait = message.next_attempt_at - moment
            base = RETRY_SCHEDULE[attempt]
            assert base * 0.9 <= wait <= base * 1.1
            with time_machine.travel(moment + wait - timedelta(seconds=1), tick=False):
                assert deliveries_run() == 0  # not before its time
            moment = message.next_attempt_at
    assert message.status == MessageStatus.FAILED
    assert len(receiver.received) == len(RETRY_SCHEDULE)
    assert len({r.id for r in receiver.received}) == 1
    log = Attempt.objects.filter(message=message)
    assert log.count() == len(RETRY_SCHEDULE)
    assert {len(a.response_excerpt) for a in log} == {EXCERPT_CHARS}
    receiver.answer = _answer(200)
    with time_machine.travel(moment + timedelta(minutes=1), tick=False):
        assert services.messages_replay(endpoint=endpoint, actor=SYSTEM, failed=True) == 1
        assert deliveries_run() == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED and message.replays == 1


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_5xx_wait_as_long_as_retry_after_says(receiver: Receiver, status: int) -> None:
    receiver.answer = _answer(status, {"Retry-After": "120"})
    _endpoint(receiver.url)
    _touch(contact_make())
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        deliveries_run()
    message = Message.objects.get()
    assert message.next_attempt_at - now >= timedelta(seconds=120)
    assert message.last_response_code == status


def test_410_disables_the_endpoint_and_managers_see_it(receiver: Receiver, client, users) -> None:
    receiver.answer = _answer(410)
    endpoint, _ = _endpoint(receiver.url)
    person = contact_make()
    _touch(person)
    _touch(person)
    assert deliveries_run() == 1
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert LedgerEntry.objects.filter(action=LedgerAction.WEBHOOK_ENDPOINT_DISABLE).count() == 1
    client.force_login(users["manager"])
    assert "410 Gone" in client.get("/").content.decode()
    client.force_login(users["marketer"])
    assert "410 Gone" not in client.get("/").content.decode()
    # Disabled, it is sent nothing; enabled again, what waited goes in order.
    assert deliveries_run() == 0
    receiver.answer = _answer(200)
    services.endpoint_enable(endpoint=endpoint, actor=SYSTEM)
    assert deliveries_run() == 2
    sequences = [json.loads(r.body)["data"]["sequence"] for r in receiver.received]
    assert sequences == [1, 1, 2]


def test_five_days_of_failure_disable_the_endpoint(receiver: Receiver) -> None:
    receiver.answer = _answer(500)
    endpoint, _ = _endpoint(receiver.url)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _touch(contact_make())
        deliveries_run()
    with time_machine.travel(start + timedelta(days=4), tick=False):
        _touch(contact_make())
        deliveries_run()
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since == start
    with time_machine.travel(start + timedelta(days=5, seconds=1), tick=False):
        _touch(contact_make())
        deliveries_run()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "5 days" in endpoint.disabled_reason


def test_a_success_resets_the_failing_clock(receiver: Receiver) -> None:
    receiver.answer = lambda number, got: (500 if number == 0 else 204, {}, b"")
    endpoint, _ = _endpoint(receiver.url)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _touch(contact_make())
        deliveries_run()
    endpoint.refresh_from_db()
    assert endpoint.failing_since == start
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        deliveries_run()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_a_persons_later_event_waits_for_the_earlier_one(receiver: Receiver) -> None:
    failed_once: list[bytes] = []

    def first_try_of_the_first_fails(number: int, got: Received) -> tuple[int, dict, bytes]:
        if json.loads(got.body)["data"]["sequence"] == 1 and not failed_once:
            failed_once.append(got.body)
            return 503, {}, b""
        return 204, {}, b""

    receiver.answer = first_try_of_the_first_fails
    _endpoint(receiver.url)
    waiting, other = contact_make(), contact_make()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _touch(waiting)
        _touch(waiting)
        _touch(other)
        assert deliveries_run() == 2  # waiting's first (fails) and other's
    assert Message.objects.get(contact_id=waiting.pk, sequence=2).attempts == 0
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        assert deliveries_run() == 2
    theirs = [json.loads(r.body)["data"]["sequence"] for r in receiver.received]
    assert sorted(theirs[:2]) == [1, 3] and theirs[2:] == [1, 2]


def test_rotation_signs_with_both_secrets_for_24_hours(receiver: Receiver) -> None:
    endpoint, old = _endpoint(receiver.url)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        endpoint, new = services.endpoint_rotate_secret(endpoint=endpoint, actor=SYSTEM)
        _touch(contact_make())
        deliveries_run()
        got = receiver.received[-1]
        assert got.verified(old) and got.verified(new)
        assert len(got.headers["webhook-signature"].split(" ")) == 2
    with time_machine.travel(start + timedelta(hours=24, seconds=1), tick=False):
        _touch(contact_make())
        deliveries_run()
        got = receiver.received[-1]
        assert got.verified(new)
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            got.verified(old)
    assert old != new and new.startswith("whsec_")
    assert old not in json.dumps(list(LedgerEntry.objects.values_list("after", flat=True)))


def test_an_address_refused_at_send_time_is_not_contacted(receiver: Receiver, settings) -> None:
    endpoint, _ = _endpoint(receiver.url)
    _touch(contact_make())
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    assert deliveries_run() == 1
    assert receiver.received == []
    attempt = Attempt.objects.get()
    assert attempt.status == AttemptStatus.FAILED and "loopback" in attempt.error
    assert Endpoint.objects.get(pk=endpoint.pk).enabled


def test_a_signature_over_the_exact_body_a_reserialising_receiver_would_break(
    receiver: Receiver,
) -> None:
    _, secret = _endpoint(receiver.url)
    _touch(contact_make())
    deliveries_run()
    got = receiver.received[0]
    reserialised = json.dumps(json.loads(got.body), indent=1).encode()
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(reserialised, got.headers)
    assert got.verified(secret)["type"] == "touch.recorded"


def test_overlapping_rounds_keep_each_persons_order(
    receiver: Receiver, api_client_for, users
) -> None:
    """More people than a round holds, two messages each: while one round is on its way
    the next is claimed, yet nobody's second message overtakes their first, and one run
    sends them all."""
    _, secret = _endpoint(receiver.url)
    people = BATCH + 50
    events = [
        {
            "type": "touch",
            "source_system": "web",
            "external_id": f"t-{number}",
            "occurred_at": "2026-11-01T10:00:00+00:00",
            "contact": {"email": f"round{number % people}@example.com"},
            "channel": "web",
        }
        for number in range(2 * people)
    ]
    client = api_client_for(users["integration"])
    for start in range(0, len(events), 250):
        answer = client.post(
            "/api/v1/events/", {"events": events[start : start + 250]}, format="json"
        )
        assert answer.status_code == 200, answer.json()
    assert deliveries_run() == 2 * people
    arrived: dict[int, list[int]] = {}
    for got in receiver.received:
        data = got.verified(secret)["data"]
        arrived.setdefault(data["contact"], []).append(data["sequence"])
    assert len(arrived) == people
    assert all(len(theirs) == 2 and theirs[0] < theirs[1] for theirs in arrived.values())
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.DELIVERED}
    assert Attempt.objects.count() == 2 * people
