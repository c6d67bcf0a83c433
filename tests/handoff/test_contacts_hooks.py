"""What the handoff app holds about a person follows merges and erasure."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts.models import Contact
from contacts.services import consent_record, contact_erase, contact_merge
from handoff import services
from handoff.models import DealContact, Handoff, HandoffStatus, RejectReason
from leadrecord.errors import Conflict
from leadrecord.ledger import Actor, ledger_verify
from tests.factories import contact_make

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


@pytest.fixture(autouse=True)
def _ruleset() -> None:
    ruleset = services.ruleset_create(
        name="r", points={"channel:webinar": 10}, mql_threshold=20, sla_hours=24, actor=SYSTEM
    )
    services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)


def _consenting(**kwargs: str) -> Contact:
    contact = contact_make(**kwargs)
    consent_record(
        contact=contact, purpose="sales_contact", granted=True, source="form", actor=SYSTEM
    )
    return contact


def test_a_merge_moves_handoffs_and_deal_memberships_and_closes_a_second_pending_one() -> None:
    kept = _consenting(organization="acme.example")
    merged = _consenting(organization="acme.example")
    kept_handoff = services.handoff_create(contact=kept, actor=SYSTEM)
    merged_handoff = services.handoff_create(contact=merged, actor=SYSTEM, note="Met at expo")
    assert kept.organization is not None
    deal, _ = services.deal_create(
        name="Acme",
        organization=kept.organization,
        members=[services.Member(kept, "champion"), services.Member(merged, "user")],
        amount=Decimal("100"),
        actor=SYSTEM,
    )
    contact_merge(keep=kept, merge=merged, actor=SYSTEM)

    merged_handoff.refresh_from_db()
    assert merged_handoff.contact_id == kept.pk
    assert merged_handoff.status == HandoffStatus.REJECTED
    assert merged_handoff.reason == RejectReason.DUPLICATE
    kept_handoff.refresh_from_db()
    assert kept_handoff.status == HandoffStatus.PENDING
    # One pending handoff per person still holds.
    assert Handoff.objects.filter(contact=kept, status=HandoffStatus.PENDING).count() == 1
    # Both were in the deal: the kept person stays once, in their own role.
    assert list(DealContact.objects.filter(deal=deal).values_list("contact_id", "role")) == [
        (kept.pk, "champion")
    ]
    assert ledger_verify().ok


def test_erasure_empties_handoff_notes_and_refuses_new_handoffs() -> None:
    contact = _consenting()
    handoff = services.handoff_create(
        contact=contact, actor=SYSTEM, note="Her husband Bob also called"
    )
    contact_erase(contact=contact, actor=SYSTEM)
    handoff.refresh_from_db()
    assert handoff.note == ""
    with pytest.raises(Conflict) as refused:
        services.handoff_create(contact=contact, actor=SYSTEM)
    assert refused.value.code == "contact_erased"
    assert ledger_verify().ok


def test_back_dated_deals_are_sourced_by_the_evidence_at_their_time() -> None:
    contact = _consenting(organization="acme.example")
    now = timezone.now()
    handoff = services.handoff_create(
        contact=contact, actor=SYSTEM, occurred_at=now - timedelta(days=100, hours=2)
    )
    from django.contrib.auth.models import Group, User

    rep = User.objects.create(username="rep")
    rep.groups.add(Group.objects.get(name="sales_rep"))
    services.handoff_accept(handoff=handoff, user=rep, occurred_at=now - timedelta(days=100))
    assert contact.organization is not None
    early, _ = services.deal_create(
        name="early",
        organization=contact.organization,
        members=[services.Member(contact, "champion")],
        amount=Decimal("1"),
        occurred_at=now - timedelta(days=95),
        actor=SYSTEM,
    )
    late, _ = services.deal_create(
        name="late",
        organization=contact.organization,
        members=[services.Member(contact, "champion")],
        amount=Decimal("1"),
        actor=SYSTEM,
    )
    before, _ = services.deal_create(
        name="before the handoff was accepted",
        organization=contact.organization,
        members=[services.Member(contact, "champion")],
        amount=Decimal("1"),
        occurred_at=now - timedelta(days=100, hours=1),
        actor=SYSTEM,
    )
    assert early.derived_source == "marketing" and "5 days before" in early.source_reason
    assert late.derived_source == "sales" and "outside the window" in late.source_reason
    assert before.derived_source == "sales"


def test_the_timeline_tells_the_handoff_story_and_erasure_seals_the_notes() -> None:
    from django.contrib.auth.models import Group, User

    from contacts.selectors import contact_timeline_entries, timeline_items
    from leadrecord.models import LedgerEntry

    contact = _consenting()
    rep = User.objects.create(username="rep")
    rep.groups.add(Group.objects.get(name="sales_rep"))
    handoff = services.handoff_create(contact=contact, actor=SYSTEM)
    services.handoff_reject(
        handoff=handoff, user=rep, reason="other", note="Moving to Lisbon in May"
    )
    summaries = [
        item.summary for item in timeline_items(rep, list(contact_timeline_entries(contact)))
    ]
    assert any(s.startswith("Handed off to sales (score 0, ruleset v1") for s in summaries)
    assert "Handoff rejected (other): Moving to Lisbon in May; back with marketing" in (summaries)
    entry = LedgerEntry.objects.get(action="handoff.reject")
    assert "Lisbon" not in str(entry.after) and "Lisbon" not in entry.reason

    contact_erase(contact=contact, actor=SYSTEM)
    summaries = [
        item.summary for item in timeline_items(rep, list(contact_timeline_entries(contact)))
    ]
    assert not any("Lisbon" in summary for summary in summaries)
    assert ledger_verify().ok
