"""The demo year: touches, handoffs, deals and sales that follow the product's own rules."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from contacts.models import Contact, Team, Touch
from demo.people import demo_people
from demo.pipeline import demo_pipeline
from handoff.models import (
    Deal,
    DealSource,
    DealState,
    Handoff,
    HandoffStatus,
    Qualification,
    Ruleset,
    RulesetStatus,
    SaleEvent,
    SaleKind,
)
from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry

from .conftest import demo_seeded

pytestmark = pytest.mark.django_db
CONTACTS = 120


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: object) -> Iterator[str]:
    with demo_seeded(django_db_blocker, contacts=CONTACTS) as out:
        yield out


def test_the_same_seed_plans_the_same_year():
    people = demo_people(CONTACTS, 7)
    assert demo_pipeline(people, 7, ["sam", "alex"]) == demo_pipeline(people, 7, ["sam", "alex"])
    assert demo_pipeline(people, 7, ["sam"]) != demo_pipeline(people, 8, ["sam"])


def test_the_demo_year_has_every_part_of_the_loop(seeded):
    assert "Demo pipeline" in seeded
    statuses = set(Handoff.objects.values_list("status", flat=True))
    assert {HandoffStatus.ACCEPTED, HandoffStatus.REJECTED, HandoffStatus.PENDING} <= statuses
    sources = set(Deal.objects.values_list("derived_source", flat=True))
    assert sources == {DealSource.MARKETING, DealSource.SALES}
    kinds = set(SaleEvent.objects.values_list("kind", flat=True))
    assert {SaleKind.WON, SaleKind.LOST} <= kinds
    assert Touch.objects.filter(channel__team=Team.MARKETING).exists()
    assert Touch.objects.filter(channel__team=Team.SALES).exists()
    assert dict(Ruleset.objects.values_list("status", "version")) == {
        RulesetStatus.RETIRED: 1,
        RulesetStatus.ACTIVE: 2,
    }
    assert Qualification.objects.filter(ruleset__version=1).exists()
    assert Handoff.objects.filter(reason__gt="").exclude(decision_note="").exists()


def test_the_demo_follows_the_rules_it_is_written_through(seeded):
    now = timezone.now()
    for handoff in Handoff.objects.select_related("contact"):
        # Only people who said yes to sales are handed to sales.
        assert handoff.buyer_signal
        assert handoff.occurred_at <= now
        if handoff.decided_at is not None:
            assert handoff.occurred_at <= handoff.decided_at <= now
    for deal in Deal.objects.prefetch_related("members", "sale_events"):
        members = {member.contact_id for member in deal.members.all()}
        window = (
            timedelta(days=deal.sourcing_handoff.ruleset.sourcing_window_days)
            if (deal.sourcing_handoff)
            else None
        )
        # Derived sourcing, recomputed here from the handoffs themselves.
        accepted = [
            handoff
            for handoff in Handoff.objects.filter(
                contact_id__in=members, status=HandoffStatus.ACCEPTED
            ).select_related("ruleset")
            if handoff.decided_at is not None
            and handoff.decided_at <= deal.occurred_at
            and deal.occurred_at - handoff.occurred_at
            <= timedelta(days=handoff.ruleset.sourcing_window_days)
        ]
        expected = DealSource.MARKETING if accepted else DealSource.SALES
        assert deal.derived_source == expected, deal
        if window is not None:
            assert deal.sourcing_handoff in accepted
        events = sorted(deal.sale_events.all(), key=lambda event: event.occurred_at)
        assert all(deal.occurred_at <= event.occurred_at <= now for event in events)
        if events:
            assert events[0].kind in (SaleKind.WON, SaleKind.LOST)
        if not events:
            assert deal.state == DealState.OPEN


def test_the_demo_year_is_on_the_ledger_and_repeating_it_changes_nothing(seeded, capsys):
    assert ledger_verify().entries == LedgerEntry.objects.count()
    assert LedgerEntry.objects.filter(action="handoff.accept").exists()
    assert LedgerEntry.objects.filter(action="sale.record").exists()
    counts = (Touch.objects.count(), Handoff.objects.count(), Deal.objects.count())
    entries = LedgerEntry.objects.count()
    call_command("seed_demo", contacts=CONTACTS)
    assert (Touch.objects.count(), Handoff.objects.count(), Deal.objects.count()) == counts
    assert LedgerEntry.objects.count() == entries
    assert Contact.objects.count() == CONTACTS


def test_the_demo_has_a_webhook_endpoint_with_a_delivery_log(seeded):
    from webhooks.models import Attempt, Endpoint

    endpoint = Endpoint.objects.get()
    assert endpoint.audience == "marketing" and endpoint.enabled
    attempts = Attempt.objects.filter(endpoint=endpoint)
    assert attempts.filter(status="succeeded", message__event_type="attribution.run_completed")
