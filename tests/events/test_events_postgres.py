"""POST events/ under concurrency and failure, on PostgreSQL and a real gunicorn."""

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

from contacts.models import Contact, Touch
from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry

from ..servers import gunicorn_process

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def batch(count: int, *, prefix: str = "ev") -> dict[str, Any]:
    return {
        "events": [
            {
                "type": "touch",
                "source_system": "crm",
                "external_id": f"{prefix}-{n}",
                "occurred_at": "2026-09-01T12:00:00Z",
                "contact": {
                    "email": f"buyer{n % 50}@org{n % 50 % 7}.example",
                    "organization": {
                        "name": f"Org {n % 50 % 7}",
                        "domain": f"org{n % 50 % 7}.example",
                    },
                },
                "channel": "web",
                "kind": "visit",
            }
            for n in range(count)
        ]
    }


def test_concurrent_retries_of_the_same_events_store_each_once(users):
    token = AuthToken.objects.create(user=users["integration"])[1]
    body = batch(300)
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            response = client.post("/api/v1/events/", body, format="json")
            assert response.status_code == 200, response.content
            answers.append(response.json())
        except BaseException as error:  # re-raised in the test thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(answer["created"] for answer in answers) == 300
    assert sum(answer["duplicate"] for answer in answers) == 900
    assert Touch.objects.count() == 300
    assert Contact.objects.count() == 50
    ids = {tuple(r["id"] for r in answer["results"]) for answer in answers}
    assert len(ids) == 1  # every caller was told the same ids
    assert ledger_verify().ok


def _post(url: str, token: str, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 -- a loopback URL the test built
        url + "/api/v1/events/",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


def _waiting_on_lock(table: str) -> bool:
    with connection.cursor() as cursor:
        # Inside a transaction the activity view is a snapshot unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND (query ILIKE %s OR query ILIKE %s)",
            [f'INSERT INTO "{table}"%', f'COPY "{table}"%'],
        )
        return bool(cursor.fetchone()[0])


def test_a_worker_killed_mid_batch_loses_nothing_and_a_retry_stores_each_event_once(users):
    token = AuthToken.objects.create(user=users["integration"])[1]
    body = batch(500, prefix="killed")
    with gunicorn_process(workers=1) as server:
        outcome: dict[str, Any] = {}

        def doomed_post() -> None:
            try:
                outcome["answer"] = _post(server.url, token, body)
            except (urllib.error.URLError, ConnectionError, OSError) as error:
                outcome["error"] = error

        # Hold the touch table so the worker stops in the middle of its
        # transaction: people created, touches not yet inserted.
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("LOCK TABLE contacts_touch IN SHARE MODE")
            thread = threading.Thread(target=doomed_post)
            thread.start()
            deadline = time.monotonic() + 30
            while not _waiting_on_lock("contacts_touch"):
                assert time.monotonic() < deadline, f"the worker never reached it: {outcome}"
                time.sleep(0.05)
            for pid in server.worker_pids():
                os.kill(pid, signal.SIGKILL)
            thread.join(timeout=30)
            cursor.execute("ROLLBACK")
        assert "error" in outcome and "answer" not in outcome
        assert Touch.objects.count() == 0 and Contact.objects.count() == 0
        ledger_entries = LedgerEntry.objects.count()

        # gunicorn's master starts a new worker; the client retries the batch.
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = _post(server.url, token, body)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert time.monotonic() < deadline
                time.sleep(0.2)
        again = _post(server.url, token, body)
    assert answer["created"] == 500 and again["duplicate"] == 500
    assert Touch.objects.count() == 500 and Contact.objects.count() == 50
    assert LedgerEntry.objects.count() == ledger_entries + 500 + 50 + 7
    assert ledger_verify().ok


def _someone_waits_for(lock: str) -> bool:
    """Whether a backend waits for a lock of this kind (``advisory``: the ledger
    lock; ``transactionid``: rows another transaction has written)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND wait_event = %s",
            [lock],
        )
        return bool(cursor.fetchone()[0])


def _wait_until_someone_waits_for(lock: str, thread: threading.Thread, outcome: dict) -> None:
    deadline = time.monotonic() + 30
    while not _someone_waits_for(lock):
        assert time.monotonic() < deadline and thread.is_alive(), outcome
        time.sleep(0.02)


def _in_thread(outcome: dict[str, Any], call: Callable[[], Any]) -> threading.Thread:
    """A thread running ``call``: its result is ``outcome["result"]``, or its error
    ``outcome["error"]``; the thread's database connection is closed after it."""

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as error:  # re-raised in the test thread by its asserts
            outcome["error"] = error
        finally:
            connection.close()

    return threading.Thread(target=run)


def _events_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.mark.parametrize("person", ["on record", "new"])
def test_a_consent_stored_meanwhile_with_the_same_pair_makes_the_touch_a_duplicate(users, person):
    """Touches, consents and disclosures share one space of (system, external id)
    pairs, but each table has its own unique constraint. A consent that another
    writer commits between this batch's duplicate check (before the ledger lock)
    and the lock must still make the touch with the same pair a duplicate."""
    from contacts import services
    from contacts.models import Consent
    from events import ingest
    from leadrecord.ledger import Actor

    token = AuthToken.objects.create(user=users["integration"])[1]
    if person == "on record":
        services.contact_create(email="buyer@org.example", actor=Actor.system("t"))
    shared = {
        "source_system": "crm",
        "external_id": "shared-1",
        "occurred_at": "2026-09-01T12:00:00Z",
        "contact": {"email": "buyer@org.example"},
    }
    touch = {**shared, "type": "touch", "channel": "web", "kind": "visit"}
    consent = {
        **shared,
        "type": "consent",
        "purpose": "marketing_email",
        "granted": True,
        "source": "form",
        "notice_version": "2026-06",
    }
    other_writer: dict[str, Any] = {}
    post_consent = _in_thread(
        other_writer,
        lambda: _events_client(token).post("/api/v1/events/", {"events": [consent]}, format="json"),
    )
    plans_copy = ingest._plans_copy

    def copy_then_let_the_other_writer_in(events, plans):
        stored = plans_copy(events, plans)
        if threading.current_thread() is threading.main_thread() and not other_writer:
            post_consent.start()
            post_consent.join(timeout=60)
        return stored

    ingest._plans_copy = copy_then_let_the_other_writer_in
    try:
        response = _events_client(token).post("/api/v1/events/", {"events": [touch]}, format="json")
    finally:
        ingest._plans_copy = plans_copy
    assert "error" not in other_writer, other_writer
    assert other_writer["result"].json()["created"] == 1  # the consent came first
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["duplicate"]) == (0, 1)
    consent_stored = Consent.objects.get()
    assert body["results"][0]["id"] == consent_stored.pk
    assert not Touch.objects.filter(external_id="shared-1").exists()
    assert Contact.objects.count() == 1
    assert ledger_verify().ok


@pytest.mark.parametrize("created_by_hand", ["contact", "organization"])
def test_a_person_created_by_hand_while_events_create_the_same_one_is_no_deadlock(
    users, created_by_hand
):
    """POST events/ creates new people and organizations under the ledger lock. A
    contact or organization created through the forms or the API at the same instant
    must wait for that lock before inserting: inserting first and then waiting is a
    deadlock (each waits on the other), which PostgreSQL ends by failing one of them."""
    from contacts import services
    from contacts.models import Organization
    from events import ingest
    from leadrecord.ledger import Actor

    token = AuthToken.objects.create(user=users["integration"])[1]
    event = {
        "type": "touch",
        "source_system": "crm",
        "external_id": "t-1",
        "occurred_at": "2026-09-01T12:00:00Z",
        "contact": {
            "email": "buyer@org.example",
            "organization": {"name": "Org", "domain": "org.example"},
        },
        "channel": "web",
        "kind": "visit",
    }
    by_hand: dict[str, Any] = {}
    hand = _in_thread(
        by_hand,
        lambda: (
            services.contact_create(email="Buyer@org.example", actor=Actor.system("form"))
            if created_by_hand == "contact"
            else services.organization_get_or_create(
                name="Org", domain="org.example", actor=Actor.system("form")
            )
        ),
    )
    people_create = ingest._people_create

    def let_the_hand_in_first(*args, **kwargs):
        # Under the ledger lock, before the events create anyone: the other
        # writer starts now, and the events go on once it waits for the lock.
        if threading.current_thread() is threading.main_thread() and not hand.is_alive():
            hand.start()
            _wait_until_someone_waits_for("advisory", hand, by_hand)
        return people_create(*args, **kwargs)

    ingest._people_create = let_the_hand_in_first
    try:
        response = _events_client(token).post("/api/v1/events/", {"events": [event]}, format="json")
    finally:
        ingest._people_create = people_create
        hand.join(timeout=60)
    assert "error" not in by_hand, by_hand
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 1
    made, created = by_hand["result"]
    assert not created  # the events came first; the form is answered with theirs
    if created_by_hand == "contact":
        assert made == Contact.objects.get()
    else:
        assert made == Organization.objects.get() == Contact.objects.get().organization
    assert ledger_verify().ok


def test_a_retry_that_deadlocks_with_an_optimistic_attempt_runs_again(users):
    """A batch's lock-first attempt (after a conflict) holds the ledger lock and
    inserts its events; another client's optimistic attempt of the same batch has
    inserted them already, uncommitted, and then asks for the lock. Each waits on
    the other and PostgreSQL fails the one that waited first: the lock-first
    attempt. It runs again (the others' events are then duplicates), never a 500."""
    from contacts import services
    from events import ingest
    from leadrecord.ledger import Actor

    token = AuthToken.objects.create(user=users["integration"])[1]
    body = batch(20, prefix="race")
    for n in range(50):  # everyone on record: the optimistic attempt inserts all
        services.contact_create(email=f"buyer{n}@org{n % 7}.example", actor=Actor.system("t"))
    retry: dict[str, Any] = {}
    retrying = _in_thread(
        retry, lambda: _events_client(token).post("/api/v1/events/", body, format="json")
    )
    real_ingest, plans_copy = ingest._ingest, ingest._plans_copy

    def conflicted_at_once(batch_, *, optimistic):
        if optimistic and threading.current_thread() is retrying:
            raise ingest._Conflict()  # as if its first attempt met another writer
        return real_ingest(batch_, optimistic=optimistic)

    def copy_then_let_the_retry_in(events, plans):
        stored = plans_copy(events, plans)
        if threading.current_thread() is threading.main_thread() and not retrying.is_alive():
            retrying.start()
            # It waits, holding the ledger lock, for the rows inserted just now.
            _wait_until_someone_waits_for("transactionid", retrying, retry)
        return stored

    ingest._ingest, ingest._plans_copy = conflicted_at_once, copy_then_let_the_retry_in
    try:
        response = _events_client(token).post("/api/v1/events/", body, format="json")
    finally:
        ingest._ingest, ingest._plans_copy = real_ingest, plans_copy
        retrying.join(timeout=60)
    assert "error" not in retry, retry
    assert response.status_code == 200 and retry["result"].status_code == 200
    assert response.json()["created"] == 20
    assert retry["result"].json()["duplicate"] == 20
    assert Touch.objects.count() == 20
    assert ledger_verify().ok
