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
from django.db import connection, transaction
from knox.models import AuthToken
from rest_framework.test import APIClient

from contacts.models import Contact, Touch
from leadrecord.ledger import Actor, ledger_lock, ledger_verify
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
            "AND datname = current_database() AND (query ILIKE %s OR query ILIKE %s)",
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


def _waiters(lock: str) -> int:
    """How many backends wait for a lock of this kind (``advisory``: the ledger lock;
    ``transactionid``: rows another transaction has written; ``relation``: a table)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND wait_event = %s AND datname = current_database()",
            [lock],
        )
        return int(cursor.fetchone()[0])


def _wait_until_waiting(lock: str, count: int, outcome: dict[str, Any]) -> None:
    deadline = time.monotonic() + 30
    while _waiters(lock) < count:
        assert time.monotonic() < deadline and "error" not in outcome, outcome
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

    return threading.Thread(target=run, daemon=True)


def _ledger_held(outcome: dict[str, Any], go: threading.Event, then: Callable[[], Any]) -> None:
    """Start a writer that takes the ledger lock, as every service does, and holds it
    until ``go``; then it runs ``then`` in the same transaction and commits. Returns
    once the lock is held."""

    def hold() -> Any:
        with transaction.atomic():
            ledger_lock()
            outcome["held"] = True
            assert go.wait(timeout=60)
            return then()

    _in_thread(outcome, hold).start()
    deadline = time.monotonic() + 30
    while "held" not in outcome:
        assert time.monotonic() < deadline and "error" not in outcome, outcome
        time.sleep(0.01)


def _events_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _post_in_thread(outcome: dict[str, Any], token: str, body: dict[str, Any]) -> threading.Thread:
    thread = _in_thread(
        outcome, lambda: _events_client(token).post("/api/v1/events/", body, format="json")
    )
    thread.start()
    return thread


@pytest.mark.parametrize("person", ["on record", "new"])
def test_a_consent_stored_meanwhile_with_the_same_pair_makes_the_touch_a_duplicate(users, person):
    """Touches, consents and disclosures share one space of (system, external id)
    pairs, but each table has its own unique constraint. A consent that another
    writer commits between this batch's duplicate check (before the ledger lock)
    and the lock must still make the touch with the same pair a duplicate.

    The other writer holds the ledger lock while the batch checks its duplicates
    and then waits for it; only then does it store the consent and commit."""
    from contacts import services
    from contacts.models import Consent
    from events.ingest import events_ingest

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
    go = threading.Event()
    _ledger_held(
        other_writer, go, lambda: events_ingest(events=[consent], actor=Actor.system("crm"))
    )
    batch_outcome: dict[str, Any] = {}
    posting = _post_in_thread(batch_outcome, token, {"events": [touch]})
    _wait_until_waiting("advisory", 1, batch_outcome)  # checked, and waiting for the lock
    go.set()
    posting.join(timeout=60)
    assert "error" not in other_writer, other_writer
    assert other_writer["result"].body["created"] == 1  # the consent came first
    assert "error" not in batch_outcome, batch_outcome
    response = batch_outcome["result"]
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
    deadlock (each waits on the other), which PostgreSQL ends by failing one of them.

    A third writer holds the ledger lock until the batch and then the form both wait
    for it; PostgreSQL grants it in turn, the batch first."""
    from contacts import services
    from contacts.models import Organization

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
    gate: dict[str, Any] = {}
    go = threading.Event()
    _ledger_held(gate, go, lambda: None)
    batch_outcome: dict[str, Any] = {}
    posting = _post_in_thread(batch_outcome, token, {"events": [event]})
    _wait_until_waiting("advisory", 1, batch_outcome)
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
    hand.start()
    _wait_until_waiting("advisory", 2, by_hand)
    go.set()
    posting.join(timeout=60)
    hand.join(timeout=60)
    assert "error" not in gate, gate
    assert "error" not in by_hand, by_hand
    assert "error" not in batch_outcome, batch_outcome
    response = batch_outcome["result"]
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
    the other and PostgreSQL fails one of them: whichever it is runs again (the
    other's events are then duplicates), never a 500.

    Staged with real writers: a third one holds the ledger lock while the first
    client's optimistic attempt waits for it, then records a consent, which makes
    that attempt conflict; the first client's lock-first attempt then stops at
    creating the batch's one new person (the test holds the people's table), while
    the second client's optimistic attempt inserts the touches and waits for the
    ledger lock. Releasing the table closes the circle."""
    from contacts import services

    token = AuthToken.objects.create(user=users["integration"])[1]
    body = batch(20, prefix="race")
    for n in range(50):  # everyone on record: the optimistic attempts insert before the lock
        services.contact_create(email=f"buyer{n}@org{n % 7}.example", actor=Actor.system("t"))
    body["events"].append(
        {**body["events"][0], "external_id": "race-new", "contact": {"email": "new@org.example"}}
    )
    spare, _ = services.contact_create(email="spare@org.example", actor=Actor.system("t"))
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(f"LOCK TABLE {Contact._meta.db_table} IN SHARE MODE")
        try:
            writer: dict[str, Any] = {}
            go = threading.Event()
            _ledger_held(
                writer,
                go,
                lambda: services.consent_record(
                    contact=spare,
                    purpose="marketing_email",
                    granted=True,
                    source="form",
                    actor=Actor.system("t"),
                ),
            )
            first_post = _post_in_thread(first, token, body)
            _wait_until_waiting("advisory", 1, first)  # touches inserted, waiting
            go.set()  # the consent lands on the ledger: the first attempt conflicts
            _wait_until_waiting("relation", 1, first)  # lock-first, creating the new person
            second_post = _post_in_thread(second, token, body)
            _wait_until_waiting("advisory", 1, second)  # touches inserted, waiting
        finally:
            cursor.execute("ROLLBACK")
    first_post.join(timeout=60)
    second_post.join(timeout=60)
    assert "error" not in writer, writer
    assert "error" not in first and "error" not in second, (first, second)
    answers = [first["result"], second["result"]]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert sorted(answer.json()["created"] for answer in answers) == [0, 21]
    assert sorted(answer.json()["duplicate"] for answer in answers) == [0, 21]
    assert Touch.objects.count() == 21
    assert ledger_verify().ok


@pytest.mark.parametrize("change", ["merge", "erase"])
def test_a_person_merged_or_erased_after_the_lookup_is_looked_up_again(users, change):
    """The people are looked up before the ledger lock; a merge or erasure that lands
    in between (on the ledger after the lookup) must not leave events on a dead contact.

    Another writer holds the ledger lock while the batch looks its people up and
    then waits for it; only then does it merge or erase the person, and commit."""
    from contacts import services

    token = AuthToken.objects.create(user=users["integration"])[1]
    keep, _ = services.contact_create(email="keep@acme.example", actor=Actor.system("t"))
    person, _ = services.contact_create(email="buyer@acme.example", actor=Actor.system("t"))
    events = [
        {
            "type": "touch",
            "source_system": "crm",
            "external_id": f"t-{n}",
            "occurred_at": "2026-09-01T12:00:00Z",
            "contact": {"email": "buyer@acme.example"},
            "channel": "web",
            "kind": "visit",
        }
        for n in range(2)
    ]
    writer: dict[str, Any] = {}
    go = threading.Event()
    _ledger_held(
        writer,
        go,
        lambda: (
            services.contact_merge(keep=keep, merge=person, actor=Actor.system("t"))
            if change == "merge"
            else services.contact_erase(contact=person, actor=Actor.system("t"))
        ),
    )
    outcome: dict[str, Any] = {}
    posting = _post_in_thread(outcome, token, {"events": events})
    _wait_until_waiting("advisory", 1, outcome)  # found alive, planned, waiting for the lock
    go.set()
    posting.join(timeout=60)
    assert "error" not in writer, writer
    assert "error" not in outcome, outcome
    body = outcome["result"].json()
    if change == "erase":
        # Both dated before the erasure: refused, never stored on the dead contact.
        assert body["rejected"] == 2
        assert {result["errors"][0]["code"] for result in body["results"]} == {"contact_erased"}
        assert not Touch.objects.filter(contact=person).exists()
        return
    assert body["created"] == 2
    contacts = {Touch.objects.get(pk=result["id"]).contact for result in body["results"]}
    assert contacts == {keep}
    assert ledger_verify().ok
