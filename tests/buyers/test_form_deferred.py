"""A new person's form post writes its rows before taking the ledger lock and chains its
entries at the end (leadrecord.ledger.ledger_deferred): other writers go on meanwhile,
and whatever they record that would change what the post read makes it start again
the ordinary way, with the same result as if it had waited for them.

Each test runs another writer in a second thread (its own connection) while a post is
between its reads and its flush: at the first scoring signal of the post
(``contacts.signals.contacts_changed``), after the person, their answers and the active
ruleset were read and written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client

from buyers.models import BuyerForm, FormSubmission
from buyers.services import buyer_form_publish
from contacts import signals
from contacts.models import Contact, Touch
from contacts.services import (
    contact_create,
    contact_erase,
    contact_merge,
    organization_get_or_create,
)
from handoff import services as handoff_services
from handoff.models import Qualification, Ruleset
from leadrecord.ledger import ledger_lock, ledger_verify
from leadrecord.models import LedgerAction, LedgerEntry

from .conftest import SYSTEM, send

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Long enough for a writer that does not wait on the post; one that does (on the old
# code, every writer: the post held the lock from its first insert) is still waiting.
MEANWHILE_SECONDS = 5


@dataclass
class Meanwhile:
    """What the other writer did: whether it finished while the post was under way."""

    finished_during_post: bool = False
    errors: list[BaseException] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)


@contextmanager
def meanwhile(action: Callable[[], Any], *, wait: float = MEANWHILE_SECONDS) -> Iterator[Meanwhile]:
    """Run ``action`` in another thread once, at the first scoring signal of a post, and
    give it ``wait`` seconds to finish before the post goes on."""
    seen = Meanwhile()

    def other() -> None:
        try:
            action()
        except BaseException as error:  # reported by the test
            seen.errors.append(error)
        finally:
            connection.close()

    def receiver(sender: Any, **_: Any) -> None:
        if seen.threads:
            return  # the post redone: the other writer has had its turn
        thread = threading.Thread(target=other)
        seen.threads.append(thread)
        thread.start()
        thread.join(wait)
        seen.finished_during_post = not thread.is_alive()

    signals.contacts_changed.connect(receiver, weak=False, dispatch_uid="test.meanwhile")
    try:
        yield seen
    finally:
        signals.contacts_changed.disconnect(dispatch_uid="test.meanwhile")
        for thread in seen.threads:
            thread.join()


@pytest.fixture(autouse=True)
def _organization_known(db: None) -> None:
    """The posts name a known organization: making one takes the lock at once."""
    organization_get_or_create(name="Acme", actor=SYSTEM)


ANSWERS = {
    "first_name": "Ada",
    "organization": "Acme",
    "budget": "50k",
    "budget__audience": "sales",
    "consent_marketing_email": "on",
}


def _post(buyer_form: BuyerForm, email: str) -> Any:
    return send(Client(), buyer_form.slug, {"email": email, **ANSWERS})


def _person(email: str) -> Contact:
    return Contact.objects.get(email_key=email)


def _actions_of(contact: Contact) -> list[str]:
    return list(
        LedgerEntry.objects.filter(contact_id=contact.pk)
        .order_by("seq")
        .values_list("action", flat=True)
    )


POSTED = [
    LedgerAction.CONTACT_CREATE,
    LedgerAction.CONSENT_RECORD,
    LedgerAction.DISCLOSURE_RECORD,
    LedgerAction.TOUCH_RECORD,
    LedgerAction.FORM_SUBMIT,
]


def _landed_whole(email: str) -> Contact:
    person = _person(email)
    assert _actions_of(person) == POSTED
    assert FormSubmission.objects.filter(contact=person, created_person=True).count() == 1
    assert Touch.objects.filter(contact=person).count() == 1
    verified = ledger_verify()
    assert verified.ok, verified
    return person


def test_two_posts_interleave_and_the_chain_holds(buyer_form):
    """Another new person's post runs whole while the first is under way: neither waits
    on the other's inserts, and both land, chained one after the other."""
    with meanwhile(lambda: _post(buyer_form, "second@buyers.example")) as other:
        response = _post(buyer_form, "first@buyers.example")
    assert response.status_code == 200 and b"Thank you" in response.content
    assert other.errors == []
    assert other.finished_during_post
    first = _landed_whole("first@buyers.example")
    second = _landed_whole("second@buyers.example")
    # The one that finished first is first on the ledger, every entry of it.
    assert max(
        LedgerEntry.objects.filter(contact_id=second.pk).values_list("seq", flat=True)
    ) < min(LedgerEntry.objects.filter(contact_id=first.pk).values_list("seq", flat=True))


def test_a_ruleset_activated_meanwhile_scores_the_post(buyer_form):
    """The post read ruleset 1 (a form is worth little); ruleset 2 (a form qualifies) is
    activated before its entries are chained: the post is redone, and scored under 2."""
    old = handoff_services.ruleset_create(
        name="old", points={"kind:form": 10}, mql_threshold=50, sla_hours=24, actor=SYSTEM
    )
    handoff_services.ruleset_activate(ruleset=old, actor=SYSTEM)
    new = handoff_services.ruleset_create(
        name="new", points={"kind:form": 60}, mql_threshold=50, sla_hours=24, actor=SYSTEM
    )

    def activate() -> None:
        handoff_services.ruleset_activate(ruleset=Ruleset.objects.get(pk=new.pk), actor=SYSTEM)

    with meanwhile(activate) as other:
        response = _post(buyer_form, "scored@buyers.example")
    assert response.status_code == 200
    assert other.errors == []
    assert other.finished_during_post
    person = _person("scored@buyers.example")
    assert (person.score, person.qualified) == (60, True)
    qualification = Qualification.objects.get(contact=person)
    assert qualification.ruleset_id == new.pk
    qualify = LedgerEntry.objects.get(contact_id=person.pk, action=LedgerAction.CONTACT_QUALIFY)
    assert (qualify.after or {}).get("ruleset_version") == new.version
    # After the activation on the ledger, as the rules it was scored by.
    activated = LedgerEntry.objects.get(action=LedgerAction.RULESET_ACTIVATE, subject_id=new.pk)
    assert qualify.seq > activated.seq
    assert ledger_verify().ok


def test_a_person_erased_meanwhile_redoes_the_post_after_it(buyer_form):
    """An erasure recorded while the post is under way: the post is redone after it (an
    erased email's check is made again), lands whole, and the erased person has none of
    it."""
    erased, _ = contact_create(email="gone@buyers.example", actor=SYSTEM)

    def erase() -> None:
        contact_erase(contact=Contact.objects.get(pk=erased.pk), actor=SYSTEM)

    with meanwhile(erase) as other:
        response = _post(buyer_form, "stays@buyers.example")
    assert response.status_code == 200
    assert other.errors == []
    assert other.finished_during_post
    person = _landed_whole("stays@buyers.example")
    assert Touch.objects.filter(contact_id=erased.pk).count() == 0
    erasure = LedgerEntry.objects.get(action=LedgerAction.CONTACT_ERASE)
    first = LedgerEntry.objects.filter(contact_id=person.pk).order_by("seq")[0]
    assert first.seq > erasure.seq
    # Redone: every entry of the post was made after the erasure, not only chained after.
    assert first.recorded_at > erasure.recorded_at


def test_people_merged_meanwhile_redo_the_post_after_it(buyer_form):
    kept, _ = contact_create(email="kept@buyers.example", actor=SYSTEM)
    merged, _ = contact_create(email="merged@buyers.example", actor=SYSTEM)

    def merge() -> None:
        contact_merge(
            keep=Contact.objects.get(pk=kept.pk),
            merge=Contact.objects.get(pk=merged.pk),
            actor=SYSTEM,
        )

    with meanwhile(merge) as other:
        response = _post(buyer_form, "third@buyers.example")
    assert response.status_code == 200
    assert other.errors == []
    assert other.finished_during_post
    person = _landed_whole("third@buyers.example")
    merging = LedgerEntry.objects.filter(action=LedgerAction.CONTACT_MERGE)[0]
    first = LedgerEntry.objects.filter(contact_id=person.pk).order_by("seq")[0]
    assert first.seq > merging.seq
    assert first.recorded_at > merging.recorded_at  # redone after it


def test_a_post_undone_leaves_nothing_and_no_stale_head(buyer_form):
    """The form is unpublished while a post is under way: the post is undone whole (the
    page is gone), nothing of it is on the record, and the next writer chains on."""
    before = LedgerEntry.objects.count()

    def unpublish() -> None:
        buyer_form_publish(
            form=BuyerForm.objects.get(pk=buyer_form.pk), published=False, actor=SYSTEM
        )

    with meanwhile(unpublish) as other:
        response = _post(buyer_form, "late@buyers.example")
    assert response.status_code == 404
    assert other.errors == []
    assert other.finished_during_post
    assert not Contact.objects.filter(email_key="late@buyers.example").exists()
    assert not FormSubmission.objects.exists()
    assert LedgerEntry.objects.count() == before + 1  # the form's own change
    with transaction.atomic():
        contact_create(email="next@buyers.example", actor=SYSTEM)
    assert ledger_verify().ok
    assert ledger_verify().entries == before + 2


def test_a_known_persons_post_takes_the_lock_before_writing_their_rows(buyer_form):
    """A known person's rows are locked by other writers too (under the ledger lock): their
    post takes the lock first, as every writer does, so a writer that needs it waits
    for the post (where a new person's post would let it through)."""
    known, _ = contact_create(email="known@buyers.example", actor=SYSTEM)

    def lock() -> None:
        with transaction.atomic():
            ledger_lock()

    with meanwhile(lock, wait=1) as other:
        response = _post(buyer_form, "known@buyers.example")
    assert response.status_code == 200
    assert other.errors == []
    assert not other.finished_during_post
    assert FormSubmission.objects.get().contact_id == known.pk
    with meanwhile(lock) as other:
        _post(buyer_form, "newcomer@buyers.example")
    assert other.finished_during_post
    assert ledger_verify().ok
