"""The handoff loop's pages: who may open them, what each form writes through its service
(rows and ledger entries), and that bad input is a 4xx naming the field with nothing written."""

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contacts.models import Contact, Organization
from contacts.services import consent_record, contact_erase
from contacts.services import contact_merge as merge_contacts
from handoff import services
from handoff.models import (
    NOTE_MAX_LENGTH,
    ContributionTarget,
    Deal,
    DealContact,
    Handoff,
    HandoffStatus,
    Ruleset,
    RulesetStatus,
    SaleEvent,
)
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import UserFactory, contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

DECIDERS = {Role.SALES_REP, Role.MANAGER}
HANDERS = {Role.MARKETER, Role.MANAGER}
MANAGERS = {Role.MANAGER}


def html(response: Any) -> str:
    return str(response.content.decode())


def login(client: Client, users: dict[str, Any], role: str) -> Client:
    client.force_login(users[role])
    return client


def counts() -> tuple[int, ...]:
    """Every table a handoff page may write, and the ledger."""
    return (
        Ruleset.objects.count(),
        Handoff.objects.count(),
        Deal.objects.count(),
        DealContact.objects.count(),
        SaleEvent.objects.count(),
        ContributionTarget.objects.count(),
        LedgerEntry.objects.count(),
    )


def ledger_actions(subject_type: str, subject_id: Any) -> list[str]:
    return list(
        LedgerEntry.objects.filter(subject_type=subject_type, subject_id=str(subject_id))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def ruleset_make(*, activate: bool = True, **overrides: Any) -> Ruleset:
    fields: dict[str, Any] = {
        "name": "Spring rules",
        "points": {"channel:webinar": 10, "kind:form": 5},
        "mql_threshold": 50,
        "sla_hours": 48,
    }
    fields.update(overrides)
    ruleset = services.ruleset_create(actor=SYSTEM, **fields)
    if activate:
        ruleset = services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    return ruleset


def consenting(email: str, organization: str = "acme.example") -> Contact:
    contact = contact_make(email=email, first_name="Ada", organization=organization)
    consent_record(
        contact=contact,
        purpose="sales_contact",
        granted=True,
        source="demo request form",
        actor=SYSTEM,
    )
    return contact


@pytest.fixture
def ruleset() -> Ruleset:
    return ruleset_make()


@pytest.fixture
def person(ruleset: Ruleset) -> Contact:
    return consenting("ada@acme.example")


@pytest.fixture
def pending(person: Contact, users: dict[str, Any]) -> Handoff:
    return services.handoff_create(
        contact=person, actor=Actor.of(users[Role.MARKETER]), note="Asked for a demo"
    )


@pytest.fixture
def deal(pending: Handoff, users: dict[str, Any]) -> Deal:
    rep = users[Role.SALES_REP]
    services.handoff_accept(handoff=pending, user=rep)
    deal, _ = services.deal_create(
        name="Acme platform",
        organization=cast(Organization, pending.contact.organization),
        members=[services.Member(pending.contact, "champion")],
        amount=Decimal("12000.00"),
        owner=rep,
        actor=Actor.of(rep),
    )
    return deal


# --- who may open which page -----------------------------------------------------------

# (url name, roles allowed, what its argument is)
PAGES = [
    ("handoff-queue", DECIDERS, None),
    ("handoffs-returned", HANDERS, None),
    ("handoff-reject", DECIDERS, "handoff"),
    ("handoff-new", HANDERS, "contact"),
    ("deals", DECIDERS, None),
    ("deal-new", DECIDERS, None),
    ("deal", DECIDERS, "deal"),
    ("rulesets", MANAGERS, None),
    ("ruleset-new", MANAGERS, None),
    ("ruleset", MANAGERS, "ruleset"),
    ("ruleset-edit", MANAGERS, "draft"),
    ("targets", MANAGERS, None),
]


def page_url(name: str, argument: str | None, deal: Deal, draft: Ruleset) -> str:
    handoff = Handoff.objects.get(contact__in=deal.members.values("contact"))
    arguments = {
        "handoff": handoff.pk,
        "contact": handoff.contact_id,
        "deal": deal.pk,
        "ruleset": draft.pk,
        "draft": draft.pk,
    }
    return reverse(name, args=[arguments[argument]]) if argument else reverse(name)


@pytest.fixture
def draft() -> Ruleset:
    return ruleset_make(activate=False, name="Summer rules", mql_threshold=60)


@pytest.mark.parametrize(("name", "allowed", "argument"), PAGES)
@pytest.mark.parametrize("role", Role.values)
def test_each_page_is_open_to_its_roles_only(
    name, allowed, argument, role, users, client, deal, draft
):
    response = login(client, users, role).get(page_url(name, argument, deal, draft))
    if role not in allowed:
        assert response.status_code == 403
    elif name == "handoff-reject":
        # The fixture's handoff was accepted: the page says there is nothing to decide.
        assert response.status_code == 409
    else:
        assert response.status_code == 200


@pytest.mark.parametrize(("name", "allowed", "argument"), PAGES)
def test_anonymous_visitors_are_sent_to_log_in(name, allowed, argument, client, deal, draft):
    url = page_url(name, argument, deal, draft)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_a_user_without_a_role_is_refused(client, make_user, deal, draft):
    client.force_login(make_user())
    for name, _, argument in PAGES:
        assert client.get(page_url(name, argument, deal, draft)).status_code == 403, name


@pytest.mark.parametrize(
    ("role", "labels"),
    [
        (Role.MARKETER, {"Handoffs": "handoffs-returned"}),
        (Role.SALES_REP, {"Handoffs": "handoff-queue", "Deals": "deals"}),
        (Role.MANAGER, {"Handoffs": "handoff-queue", "Deals": "deals", "Rules": "rulesets"}),
        (Role.PRIVACY_OFFICER, {}),
    ],
)
def test_the_navigation_links_to_the_pages_of_the_role(role, labels, users, client):
    page = html(login(client, users, role).get(reverse("home")))
    for label, name in labels.items():
        assert f'<a href="{reverse(name)}">{label}</a>' in page
    for name in ("handoff-queue", "deals", "rulesets"):
        if name not in labels.values():
            assert f'href="{reverse(name)}"' not in page


def test_forbidden_posts_change_nothing(users, client, pending, draft):
    before = counts()
    marketer = login(Client(), users, Role.MARKETER)
    assert marketer.post(reverse("handoff-accept", args=[pending.pk])).status_code == 403
    reject = {"reason": "no_budget"}
    assert marketer.post(reverse("handoff-reject", args=[pending.pk]), reject).status_code == 403
    rep = login(Client(), users, Role.SALES_REP)
    assert rep.post(reverse("handoff-new", args=[pending.contact_id])).status_code == 403
    assert rep.post(reverse("ruleset-activate", args=[draft.pk])).status_code == 403
    target = {"period": "2026-Q4", "marketing_pipeline_share": "0.4"}
    assert rep.post(reverse("targets"), target).status_code == 403
    officer = login(client, users, Role.PRIVACY_OFFICER)
    assert officer.post(reverse("handoff-accept", args=[pending.pk])).status_code == 403
    assert officer.post(reverse("deal-new"), {"name": "x"}).status_code == 403
    assert counts() == before
    pending.refresh_from_db()
    assert pending.status == HandoffStatus.PENDING


def test_pages_answer_only_their_methods(users, client, pending):
    login(client, users, Role.SALES_REP)
    assert client.get(reverse("handoff-accept", args=[pending.pk])).status_code == 405
    assert client.post(reverse("handoff-queue")).status_code == 405


# --- the queue: accept and reject ---------------------------------------------------


def test_the_queue_shows_pending_handoffs_oldest_due_first_with_their_sla(users, client, ruleset):
    marketer = Actor.of(users[Role.MARKETER])
    now = timezone.now()
    later = services.handoff_create(contact=consenting("later@acme.example"), actor=marketer)
    soon = services.handoff_create(
        contact=consenting("soon@acme.example"),
        actor=marketer,
        note=HOSTILE,
        occurred_at=now - timedelta(hours=40),
    )
    late = services.handoff_create(
        contact=consenting("late@acme.example"),
        actor=marketer,
        occurred_at=now - timedelta(hours=50),
    )
    page = html(login(client, users, Role.SALES_REP).get(reverse("handoff-queue")))
    positions = [page.index(f'id="handoff-{h.pk}"') for h in (late, soon, later)]
    assert positions == sorted(positions)
    assert "<strong>overdue</strong>" in page
    assert "<strong>due soon</strong>" in page
    assert "<strong>on time</strong>" in page
    assert "Consented to sales contact" in page
    assert users[Role.MARKETER].username in page
    assert HOSTILE_ESCAPED in page and HOSTILE not in page


def test_a_rep_sees_unassigned_handoffs_and_their_own_only(users, client, ruleset):
    other = cast(User, UserFactory(username="other-rep", role=Role.SALES_REP))
    mine = services.handoff_create(
        contact=consenting("mine@acme.example"), actor=SYSTEM, assigned_to=users[Role.SALES_REP]
    )
    theirs = services.handoff_create(
        contact=consenting("theirs@acme.example"), actor=SYSTEM, assigned_to=other
    )
    page = html(login(client, users, Role.SALES_REP).get(reverse("handoff-queue")))
    assert f'id="handoff-{mine.pk}"' in page
    assert f'id="handoff-{theirs.pk}"' not in page
    manager_page = html(login(Client(), users, Role.MANAGER).get(reverse("handoff-queue")))
    assert f'id="handoff-{theirs.pk}"' in manager_page


def test_accepting_takes_ownership_through_the_service(users, client, pending):
    rep = users[Role.SALES_REP]
    response = login(client, users, Role.SALES_REP).post(
        reverse("handoff-accept", args=[pending.pk]), follow=True
    )
    assert response.status_code == 200
    assert "they are yours now" in html(response)
    pending.refresh_from_db()
    assert (pending.status, pending.owner, pending.decided_by) == (HandoffStatus.ACCEPTED, rep, rep)
    assert ledger_actions("handoff", pending.pk) == ["handoff.create", "handoff.accept"]
    # The accepted person is offered for a deal.
    assert f"{reverse('deal-new')}?handoff={pending.pk}" in html(response)


def test_accepting_twice_is_refused_with_a_message(users, client, pending):
    login(client, users, Role.SALES_REP)
    client.post(reverse("handoff-accept", args=[pending.pk]))
    before = counts()
    response = client.post(reverse("handoff-accept", args=[pending.pk]))
    assert response.status_code == 409
    assert "already accepted; nothing changed" in html(response)
    assert counts() == before


def _late_entry(handoff: Handoff) -> dict[str, Any]:
    entry = LedgerEntry.objects.filter(subject_type="handoff", subject_id=str(handoff.pk)).latest(
        "seq"
    )
    return cast(dict[str, Any], entry.after)


def test_an_overdue_handoff_can_still_be_accepted_and_the_decision_says_how_late(
    users, client, person
):
    # Due 48 hours after it was made: a day past its SLA, not yet expired by the job.
    handoff = services.handoff_create(
        contact=person, actor=SYSTEM, occurred_at=timezone.now() - timedelta(hours=72)
    )
    login(client, users, Role.SALES_REP)
    queue = html(client.get(reverse("handoff-queue")))
    assert "overdue" in queue and reverse("handoff-accept", args=[handoff.pk]) in queue
    response = client.post(reverse("handoff-accept", args=[handoff.pk]), follow=True)
    assert response.status_code == 200
    assert "1 day after the SLA" in html(response)
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.ACCEPTED
    after = _late_entry(handoff)
    assert after["late"] is True
    assert 24 * 3600 - 60 <= after["late_by_seconds"] <= 24 * 3600 + 60
    # The person's page shows it too.
    page = html(client.get(reverse("contact", args=[person.pk])))
    assert "1 day after the SLA" in page


def test_an_overdue_handoff_can_still_be_rejected_late(users, client, person):
    handoff = services.handoff_create(
        contact=person, actor=SYSTEM, occurred_at=timezone.now() - timedelta(hours=51)
    )
    login(client, users, Role.SALES_REP)
    response = client.post(
        reverse("handoff-reject", args=[handoff.pk]), {"reason": "no_budget"}, follow=True
    )
    assert response.status_code == 200
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.REJECTED
    after = _late_entry(handoff)
    assert after["late"] is True and after["reason"] == "no_budget"
    assert 3 * 3600 - 60 <= after["late_by_seconds"] <= 3 * 3600 + 60


def test_a_decision_in_time_is_not_marked_late(users, client, pending):
    login(client, users, Role.SALES_REP).post(reverse("handoff-accept", args=[pending.pk]))
    after = _late_entry(pending)
    assert "late" not in after and "late_by_seconds" not in after
    page = html(client.get(reverse("contact", args=[pending.contact_id])))
    assert "after the SLA" not in page


def test_an_expired_handoff_cannot_be_accepted_or_rejected(users, client, person):
    handoff = services.handoff_create(
        contact=person, actor=SYSTEM, occurred_at=timezone.now() - timedelta(hours=49)
    )
    services.handoffs_expire_due()
    before = counts()
    login(client, users, Role.SALES_REP)
    assert reverse("handoff-accept", args=[handoff.pk]) not in html(
        client.get(reverse("handoff-queue"))
    )
    response = client.post(reverse("handoff-accept", args=[handoff.pk]))
    assert response.status_code == 409
    assert "already expired" in html(response)
    response = client.post(reverse("handoff-reject", args=[handoff.pk]), {"reason": "no_budget"})
    assert response.status_code == 409
    assert counts() == before


def test_someone_elses_handoff_is_refused(users, client, person):
    other = cast(User, UserFactory(username="other-rep", role=Role.SALES_REP))
    handoff = services.handoff_create(contact=person, actor=SYSTEM, assigned_to=other)
    before = counts()
    login(client, users, Role.SALES_REP)
    response = client.post(reverse("handoff-accept", args=[handoff.pk]))
    assert response.status_code == 403
    assert "assigned to another rep" in html(response)
    response = client.post(reverse("handoff-reject", args=[handoff.pk]), {"reason": "no_budget"})
    assert response.status_code == 403
    assert counts() == before


def test_an_unknown_handoff_is_not_found(users, client, pending):
    login(client, users, Role.SALES_REP)
    assert client.post(reverse("handoff-accept", args=[pending.pk + 1000])).status_code == 404
    assert client.get(reverse("handoff-reject", args=[pending.pk + 1000])).status_code == 404


def test_rejecting_sends_the_person_back_with_the_reason(users, client, pending):
    login(client, users, Role.SALES_REP)
    page = client.get(reverse("handoff-reject", args=[pending.pk]))
    assert page.status_code == 200 and "Asked for a demo" in html(page)
    response = client.post(
        reverse("handoff-reject", args=[pending.pk]),
        {"reason": "bad_timing", "note": "Budget opens in Q3"},
    )
    assert response.status_code == 302
    pending.refresh_from_db()
    assert (pending.status, pending.reason, pending.decision_note) == (
        HandoffStatus.REJECTED,
        "bad_timing",
        "Budget opens in Q3",
    )
    assert ledger_actions("handoff", pending.pk) == ["handoff.create", "handoff.reject"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "reason", "This field is required."),
        ({"reason": "too_expensive"}, "reason", "Select a valid choice."),
        ({"reason": "no_budget", "note": "x" * (NOTE_MAX_LENGTH + 1)}, "note", "at most"),
        ({"reason": "other", "note": "  "}, "note", "Say why in the note"),
    ],
)
def test_a_bad_rejection_names_the_field_and_changes_nothing(
    data, field, message, users, client, pending
):
    before = counts()
    response = login(client, users, Role.SALES_REP).post(
        reverse("handoff-reject", args=[pending.pk]), data
    )
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert message in " ".join(response.context["form"].errors[field])
    assert counts() == before


# --- marketing: handing off and the returned list -----------------------------------


def test_a_marketer_hands_a_consenting_person_off(users, client, person):
    rep = users[Role.SALES_REP]
    login(client, users, Role.MARKETER)
    contact_page = html(client.get(reverse("contact", args=[person.pk])))
    assert reverse("handoff-new", args=[person.pk]) in contact_page
    assert "Never handed off to sales." in contact_page
    form = client.get(reverse("handoff-new", args=[person.pk]))
    assert form.status_code == 200 and rep.username in html(form)
    # Not qualified (no touches): offered, with a caution, and confirmed on the form.
    assert "Not qualified yet (score 0, threshold 50)" in contact_page
    before = counts()
    unconfirmed = client.post(
        reverse("handoff-new", args=[person.pk]), {"note": "Wants pricing", "assigned_to": rep.pk}
    )
    assert unconfirmed.status_code == 400
    assert "tick the box" in html(unconfirmed)
    assert counts() == before
    response = client.post(
        reverse("handoff-new", args=[person.pk]),
        {"note": "Wants pricing", "assigned_to": rep.pk, "confirm_unqualified": "on"},
        follow=True,
    )
    assert response.status_code == 200
    handoff = Handoff.objects.get(contact=person)
    assert (handoff.status, handoff.note, handoff.assigned_to) == ("pending", "Wants pricing", rep)
    assert handoff.created_by == users[Role.MARKETER]
    assert ledger_actions("handoff", handoff.pk) == ["handoff.create"]
    assert "was handed off to sales" in html(response)
    # The contact page shows the person's handoffs.
    assert "Waiting for sales" in html(response) and "Wants pricing" in html(response)


def test_a_qualified_person_is_offered_without_a_caution_or_a_box_to_tick(users, client, person):
    # Set up as the scoring would leave them: qualified under the active ruleset.
    Contact.objects.filter(pk=person.pk).update(qualified=True, score=60)
    login(client, users, Role.MARKETER)
    page = html(client.get(reverse("contact", args=[person.pk])))
    assert reverse("handoff-new", args=[person.pk]) in page and "Not qualified" not in page
    form = html(client.get(reverse("handoff-new", args=[person.pk])))
    assert "confirm_unqualified" not in form
    response = client.post(reverse("handoff-new", args=[person.pk]), {"note": ""})
    assert response.status_code == 302 and Handoff.objects.filter(contact=person).count() == 1


@pytest.mark.parametrize(
    ("situation", "reason"),
    [
        ("no_say_so", "without their say-so"),
        ("pending", "is still waiting for sales"),
        ("no_ruleset", "There is no active ruleset"),
    ],
)
def test_hand_off_is_not_offered_when_it_would_be_refused_and_the_page_says_why(
    users, client, situation, reason
):
    if situation != "no_ruleset":
        ruleset_make()
    contact = (
        contact_make(email="silent@acme.example")
        if situation == "no_say_so"
        else consenting("waiting@acme.example")
    )
    if situation == "pending":
        services.handoff_create(contact=contact, actor=SYSTEM)
    login(client, users, Role.MARKETER)
    page = html(client.get(reverse("contact", args=[contact.pk])))
    assert f'href="{reverse("handoff-new", args=[contact.pk])}"' not in page
    assert "Not offered to sales:" in page and reason in page
    # The form's address says so before anything is typed, and offers no form.
    before = counts()
    form = client.get(reverse("handoff-new", args=[contact.pk]))
    assert form.status_code == 409 and reason in html(form)
    assert 'name="note"' not in html(form)
    assert counts() == before


def test_sales_and_the_privacy_officer_get_no_hand_off_button(users, client, person):
    for role in (Role.SALES_REP, Role.PRIVACY_OFFICER):
        page = html(login(Client(), users, role).get(reverse("contact", args=[person.pk])))
        assert reverse("handoff-new", args=[person.pk]) not in page


def test_no_handoff_without_the_buyers_say_so(users, client, ruleset):
    silent = contact_make(email="silent@acme.example")
    before = counts()
    response = login(client, users, Role.MARKETER).post(reverse("handoff-new", args=[silent.pk]))
    assert response.status_code == 409
    assert "without their say-so" in html(response)
    assert counts() == before


def test_a_second_open_handoff_is_refused(users, client, pending):
    before = counts()
    response = login(client, users, Role.MARKETER).post(
        reverse("handoff-new", args=[pending.contact_id])
    )
    assert response.status_code == 409
    assert "is still waiting for sales" in html(response)
    assert counts() == before


def test_no_handoff_without_an_active_ruleset(users, client):
    contact = consenting("early@acme.example")
    before = counts()
    response = login(client, users, Role.MANAGER).post(reverse("handoff-new", args=[contact.pk]))
    assert response.status_code == 409
    assert "There is no active ruleset" in html(response)
    assert counts() == before


def test_an_erased_person_cannot_be_handed_off(users, client, person):
    contact_erase(contact=person, actor=SYSTEM)
    before = counts()
    response = login(client, users, Role.MARKETER).post(reverse("handoff-new", args=[person.pk]))
    assert response.status_code == 409
    assert "This contact has been erased." in html(response)
    assert counts() == before


def test_a_merged_person_is_handed_off_as_the_one_they_went_into(users, client, person):
    duplicate = consenting("ada.l@acme.example")
    merge_contacts(keep=person, merge=duplicate, actor=SYSTEM)
    before = counts()
    response = login(client, users, Role.MARKETER).post(reverse("handoff-new", args=[duplicate.pk]))
    assert response.status_code == 409
    assert f"merged into {person.display_name}" in html(response)
    assert counts() == before


def test_the_contact_page_shows_a_rejection_and_its_reason(users, client, pending):
    services.handoff_reject(
        handoff=pending, user=users[Role.SALES_REP], reason="not_a_fit", note="Too small"
    )
    page = html(
        login(client, users, Role.SALES_REP).get(reverse("contact", args=[pending.contact_id]))
    )
    section = page[page.index('id="handoffs"') : page.index('id="timeline"')]
    assert "Rejected · returned to marketing" in section
    assert "Not a fit" in section and "Too small" in section
    assert users[Role.SALES_REP].username in section


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"note": "x" * (NOTE_MAX_LENGTH + 1)}, "note"),
        ({"assigned_to": "999999"}, "assigned_to"),
        ({"assigned_to": "not-a-user"}, "assigned_to"),
    ],
)
def test_a_bad_hand_off_names_the_field_and_writes_nothing(data, field, users, client, person):
    before = counts()
    response = login(client, users, Role.MARKETER).post(
        reverse("handoff-new", args=[person.pk]), data
    )
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert counts() == before


def test_only_a_sales_rep_can_be_named_as_assignee(users, client, person):
    before = counts()
    response = login(client, users, Role.MARKETER).post(
        reverse("handoff-new", args=[person.pk]), {"assigned_to": users[Role.MARKETER].pk}
    )
    assert response.status_code == 400
    assert "assigned_to" in response.context["form"].errors
    assert counts() == before


def test_the_returned_list_shows_rejected_and_expired_handoffs(users, client, pending):
    services.handoff_reject(
        handoff=pending, user=users[Role.SALES_REP], reason="no_budget", note=HOSTILE
    )
    expired = services.handoff_create(
        contact=consenting("late@acme.example"),
        actor=SYSTEM,
        occurred_at=timezone.now() - timedelta(hours=49),
    )
    services.handoffs_expire_due()
    waiting = services.handoff_create(contact=consenting("new@acme.example"), actor=SYSTEM)
    page = html(login(client, users, Role.MARKETER).get(reverse("handoffs-returned")))
    assert f'id="handoff-{pending.pk}"' in page and f'id="handoff-{expired.pk}"' in page
    assert f'id="handoff-{waiting.pk}"' not in page
    assert "No budget" in page and users[Role.SALES_REP].username in page
    assert "No answer within the 48-hour SLA" in page
    assert HOSTILE_ESCAPED in page and HOSTILE not in page


# --- deals -------------------------------------------------------------------------------


def _deal_data(**overrides: Any) -> dict[str, Any]:
    data = {"name": "Acme platform", "amount": "25000.00", "member_role_0": "champion"}
    data.update(overrides)
    return data


def test_a_deal_from_an_accepted_handoff_is_prefilled_and_marketing_sourced(users, client, pending):
    rep = users[Role.SALES_REP]
    services.handoff_accept(handoff=pending, user=rep)
    colleague = contact_make(email="bob@acme.example", organization="acme.example")
    outsider = contact_make(email="eve@partner.example", organization="partner.example")
    login(client, users, Role.SALES_REP)
    form = client.get(reverse("deal-new"), {"handoff": pending.pk})
    assert form.status_code == 200
    initial = form.context["form"].initial
    assert initial["member_email_0"] == "ada@acme.example"
    assert initial["organization"] == "acme.example"
    assert initial["owner"] == rep.pk
    response = client.post(
        f"{reverse('deal-new')}?handoff={pending.pk}",
        _deal_data(
            organization="acme.example",
            owner=rep.pk,
            member_email_0="ADA@acme.example",
            member_email_1="bob@acme.example",
            member_role_1="decision_maker",
            member_email_2="eve@partner.example",
            member_role_2="influencer",
        ),
    )
    assert response.status_code == 302
    deal = Deal.objects.get()
    assert response["Location"] == reverse("deal", args=[deal.pk])
    assert (deal.amount, deal.owner, deal.derived_source) == (Decimal("25000.00"), rep, "marketing")
    roles = dict(deal.members.values_list("contact_id", "role"))
    assert roles == {
        pending.contact_id: "champion",
        colleague.pk: "decision_maker",
        outsider.pk: "influencer",
    }
    assert ledger_actions("deal", deal.pk) == ["deal.create"] + ["deal.member_add"] * 3
    page = html(client.get(reverse("deal", args=[deal.pk])))
    assert "Marketing-sourced" in page and f"handoff #{pending.pk}" not in page
    assert "(the handoff of <a href=" in page and "Ada" in page
    assert page.count("Flagged: from another organization") == 1
    listing = html(client.get(reverse("deals")))
    assert "Acme platform" in listing and "25000.00" in listing and "Marketing-sourced" in listing


def test_one_deal_per_accepted_handoff_unless_the_rep_confirms_another(users, client, pending):
    rep = users[Role.SALES_REP]
    services.handoff_accept(handoff=pending, user=rep)
    login(client, users, Role.SALES_REP)
    url = f"{reverse('deal-new')}?handoff={pending.pk}"
    data = _deal_data(organization="acme.example", owner=rep.pk, member_email_0="ada@acme.example")
    assert client.post(url, data).status_code == 302
    first = Deal.objects.get()
    # The queue now leads to the deal instead of offering another.
    queue = html(client.get(reverse("handoff-queue")))
    assert reverse("deal", args=[first.pk]) in queue and url not in queue
    # The form warns, and refuses a second one without the tick.
    form = html(client.get(url))
    assert "already has a deal since this handoff" in form and "confirm_another" in form
    before = counts()
    refused = client.post(url, data)
    assert refused.status_code == 409
    assert "Tick the box to create another one" in html(refused)
    assert counts() == before
    confirmed = client.post(url, {**data, "name": "Acme add-on", "confirm_another": "on"})
    assert confirmed.status_code == 302 and Deal.objects.count() == 2


def test_a_deal_without_a_handoff_asks_no_confirmation(users, client, pending):
    rep = users[Role.SALES_REP]
    services.handoff_accept(handoff=pending, user=rep)
    login(client, users, Role.SALES_REP)
    data = _deal_data(organization="acme.example", owner=rep.pk, member_email_0="ada@acme.example")
    assert client.post(reverse("deal-new"), data).status_code == 302
    assert "confirm_another" not in html(client.get(reverse("deal-new")))
    assert client.post(reverse("deal-new"), {**data, "name": "Again"}).status_code == 302
    assert Deal.objects.count() == 2


def test_a_pending_or_unknown_handoff_is_no_start_for_a_deal(users, client, pending):
    login(client, users, Role.SALES_REP)
    assert client.get(reverse("deal-new"), {"handoff": pending.pk}).status_code == 404
    assert client.get(reverse("deal-new"), {"handoff": "abc"}).status_code == 404
    assert client.get(reverse("deal-new"), {"handoff": "9" * 40}).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"amount": "-5"}, "amount", "cannot be negative"),
        ({"amount": "lots"}, "amount", "Enter a number."),
        ({"amount": ""}, "amount", "required"),
        ({"amount": "1" * 20}, "amount", "digits"),
        ({"name": ""}, "name", "required"),
        ({"name": "x" * 201}, "name", "at most"),
        ({"organization": "nowhere.example"}, "organization", "No organization on record"),
        ({"organization": ""}, "organization", "required"),
        ({"member_email_0": "nobody@nowhere.example"}, "member_email_0", "No contact on record"),
        ({"member_email_0": "not an email"}, "member_email_0", "valid email"),
        ({"member_role_0": "boss"}, "member_role_0", "Select a valid choice"),
        ({"member_email_1": "ada@acme.example"}, "member_email_1", "already in the group"),
        ({"owner": "not-a-user"}, "owner", "Select a valid choice"),
    ],
)
def test_a_bad_deal_names_the_field_and_writes_nothing(
    overrides, field, message, users, client, person
):
    data = _deal_data(organization="acme.example", member_email_0="ada@acme.example")
    data.update(overrides)
    before = counts()
    response = login(client, users, Role.SALES_REP).post(reverse("deal-new"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert counts() == before


def test_members_beyond_the_rows_shown_are_taken_up_to_the_limit(users, client, person):
    colleague = contact_make(email="bob@acme.example", organization="acme.example")
    login(client, users, Role.SALES_REP)
    data = _deal_data(organization="acme.example", member_email_0="ada@acme.example")
    data.update({"member_email_7": "bob@acme.example", "member_role_7": "user"})
    response = client.post(reverse("deal-new"), data)
    assert response.status_code == 302
    deal = Deal.objects.get()
    assert dict(deal.members.values_list("contact_id", "role")) == {
        person.pk: "champion",
        colleague.pk: "user",
    }
    before = counts()
    too_many = client.post(
        reverse("deal-new"), {**data, "name": "Too big", "member_email_50": "bob@acme.example"}
    )
    assert too_many.status_code == 400
    assert "at most 50 people" in " ".join(too_many.context["form"].non_field_errors())
    assert counts() == before


def test_an_erased_member_is_not_found_by_email(users, client, person):
    gone = contact_make(email="gone@acme.example", organization="acme.example")
    contact_erase(contact=gone, actor=SYSTEM)
    before = counts()
    data = _deal_data(organization="acme.example", member_email_0="gone@acme.example")
    response = login(client, users, Role.SALES_REP).post(reverse("deal-new"), data)
    assert response.status_code == 400
    assert "No contact on record" in " ".join(response.context["form"].errors["member_email_0"])
    assert counts() == before


def test_the_organization_is_found_by_name_unless_the_name_is_ambiguous(users, client, person):
    login(client, users, Role.SALES_REP)
    response = client.post(reverse("deal-new"), _deal_data(organization="ACME"))
    assert response.status_code == 302
    assert Deal.objects.get().organization == person.organization
    contact_make(email="someone@acme.test", organization="acme.test")  # another "Acme"
    before = counts()
    response = client.post(reverse("deal-new"), _deal_data(organization="acme"))
    assert response.status_code == 400
    assert "give the domain" in " ".join(response.context["form"].errors["organization"])
    assert counts() == before


def test_an_owner_outside_sales_is_refused(users, client, person):
    before = counts()
    data = _deal_data(organization="acme.example", owner=users[Role.MARKETER].pk)
    response = login(client, users, Role.SALES_REP).post(reverse("deal-new"), data)
    assert response.status_code == 400
    assert "owner" in response.context["form"].errors
    assert counts() == before


def test_a_known_external_id_leads_to_the_first_deal(users, client, person):
    login(client, users, Role.SALES_REP)
    data = _deal_data(organization="acme.example", external_id="crm-1")
    client.post(reverse("deal-new"), data)
    before = counts()
    response = client.post(reverse("deal-new"), {**data, "name": "Another"}, follow=True)
    assert response.status_code == 200
    assert "is on record: here it is" in html(response)
    assert counts() == before


def test_recording_won_moves_the_deal_and_won_twice_is_refused(users, client, deal):
    login(client, users, Role.SALES_REP)
    response = client.post(
        reverse("deal-sale-event", args=[deal.pk]), {"kind": "won", "amount": "12000"}
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    event = SaleEvent.objects.get(deal=deal)
    assert (deal.state, event.kind, event.amount) == ("won", "won", Decimal("12000"))
    assert ledger_actions("deal", deal.pk)[-1] == "sale.record"
    before = counts()
    again = client.post(
        reverse("deal-sale-event", args=[deal.pk]), {"kind": "won", "amount": "12000"}
    )
    assert again.status_code == 409
    assert "already been won" in " ".join(again.context["sale_form"].errors["kind"])
    assert counts() == before
    expansion = client.post(
        reverse("deal-sale-event", args=[deal.pk]), {"kind": "expansion", "amount": "3000.50"}
    )
    assert expansion.status_code == 302
    page = html(client.get(reverse("deal", args=[deal.pk])))
    assert "Expansion" in page and "3000.50" in page


@pytest.mark.parametrize(
    ("data", "field", "status"),
    [
        ({"kind": "won", "amount": "-1"}, "amount", 400),
        ({"kind": "won", "amount": "twelve"}, "amount", 400),
        ({"kind": "won"}, "amount", 400),
        ({"kind": "bought", "amount": "1"}, "kind", 400),
        ({"amount": "1"}, "kind", 400),
        ({"kind": "renewal", "amount": "1"}, "kind", 409),
        ({"kind": "won", "amount": "1", "occurred_at": "2999-01-01T10:00"}, "occurred_at", 400),
        ({"kind": "won", "amount": "1", "occurred_at": "2000-01-01T10:00"}, "occurred_at", 400),
        ({"kind": "won", "amount": "1", "occurred_at": "yesterday"}, "occurred_at", 400),
    ],
)
def test_a_bad_sale_event_names_the_field_and_writes_nothing(
    data, field, status, users, client, deal
):
    before = counts()
    response = login(client, users, Role.SALES_REP).post(
        reverse("deal-sale-event", args=[deal.pk]), data
    )
    assert response.status_code == status
    assert field in response.context["sale_form"].errors
    assert counts() == before
    deal.refresh_from_db()
    assert deal.state == "open"


def test_a_sale_event_before_the_deal_is_refused_in_words(users, client, deal):
    before = deal.occurred_at - timedelta(days=3)
    response = login(client, users, Role.SALES_REP).post(
        reverse("deal-sale-event", args=[deal.pk]),
        {"kind": "won", "amount": "1", "occurred_at": before.strftime("%Y-%m-%dT%H:%M")},
    )
    assert response.status_code == 400
    message = " ".join(response.context["sale_form"].errors["occurred_at"])
    assert re.search(r"created on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC;", message), message
    assert "+00:00" not in message and "T" not in message.split("created on ")[1][:11]


def test_a_lost_deal_needs_no_amount(users, client, deal):
    response = login(client, users, Role.MANAGER).post(
        reverse("deal-sale-event", args=[deal.pk]), {"kind": "lost"}
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.state == "lost"


def test_overriding_the_source_needs_a_reason_and_is_on_the_record(users, client, deal):
    login(client, users, Role.SALES_REP)
    before = counts()
    refused = client.post(reverse("deal-override-source", args=[deal.pk]), {"source": "sales"})
    assert refused.status_code == 400
    assert "reason" in refused.context["override_form"].errors
    bad = client.post(
        reverse("deal-override-source", args=[deal.pk]), {"source": "partner", "reason": "x"}
    )
    assert bad.status_code == 400 and "source" in bad.context["override_form"].errors
    assert counts() == before
    response = client.post(
        reverse("deal-override-source", args=[deal.pk]),
        {"source": "sales", "reason": "The rep met them at a dinner first"},
        follow=True,
    )
    assert response.status_code == 200
    deal.refresh_from_db()
    assert (deal.source, deal.derived_source) == ("sales", "marketing")
    assert ledger_actions("deal", deal.pk)[-1] == "deal.override_source"
    assert "Overridden to sales: The rep met them at a dinner first" in html(response)


def test_an_unknown_deal_is_not_found(users, client, deal):
    login(client, users, Role.SALES_REP)
    assert client.get(reverse("deal", args=[deal.pk + 1000])).status_code == 404
    data = {"kind": "won", "amount": "1"}
    assert client.post(reverse("deal-sale-event", args=[deal.pk + 1000]), data).status_code == 404


# --- rulesets and targets ---------------------------------------------------------------

RULESET_DATA = {
    "name": "Autumn rules",
    "points": "channel:webinar = 20\nkind:form = 5\n# a comment\n\ndisclosure:budget = 15",
    "mql_threshold": "40",
    "sla_hours": "24",
    "sourcing_window_days": "60",
    "lookback_days": "365",
}


def test_a_manager_writes_a_draft_sees_the_diff_and_activates_it(users, client, ruleset):
    login(client, users, Role.MANAGER)
    response = client.post(reverse("ruleset-new"), {**RULESET_DATA, "auto_handoff": "on"})
    assert response.status_code == 302
    draft = Ruleset.objects.get(name="Autumn rules")
    assert draft.status == RulesetStatus.DRAFT
    assert draft.points == {"channel:webinar": 20, "disclosure:budget": 15, "kind:form": 5}
    assert (draft.mql_threshold, draft.sla_hours, draft.auto_handoff) == (40, 24, True)
    assert ledger_actions("ruleset", draft.pk) == ["ruleset.create"]

    page = html(client.get(reverse("ruleset", args=[draft.pk])))
    diff = page[page.index('id="ruleset-diff"') : page.index("Review and activate v")]
    assert "<td>MQL threshold (points to qualify)</td><td>50</td><td>40</td>" in diff
    assert "<td>Points: a touch on the channel Webinar</td><td>10</td><td>20</td>" in diff
    assert "<td>Points: disclosed budget</td><td>—</td><td>15</td>" in diff
    assert "form submitted" not in diff  # unchanged
    assert "mql_threshold" not in diff and "channel:webinar" not in diff

    edited = client.post(
        reverse("ruleset-edit", args=[draft.pk]), {**RULESET_DATA, "mql_threshold": "45"}
    )
    assert edited.status_code == 302
    draft.refresh_from_db()
    assert (draft.mql_threshold, draft.auto_handoff) == (45, False)

    # Activating asks first: what changes and how many people are rescored.
    contact_make(email="someone@acme.example")
    contact_make(email="someone.else@acme.example")
    before = counts()
    confirm = client.get(reverse("ruleset-activate", args=[draft.pk]))
    assert confirm.status_code == 200
    page = html(confirm)
    assert "cannot be undone" in page and "v1 (Spring rules) is retired" in page
    assert "2 people are rescored" in page
    assert "<td>MQL threshold (points to qualify)</td><td>50</td><td>45</td>" in page
    # A POST without the confirmation (an old form, a stray request) only shows it again.
    unconfirmed = client.post(reverse("ruleset-activate", args=[draft.pk]))
    assert unconfirmed.status_code == 200 and "cannot be undone" in html(unconfirmed)
    assert counts() == before
    draft.refresh_from_db()
    assert draft.status == RulesetStatus.DRAFT
    activated = client.post(reverse("ruleset-activate", args=[draft.pk]), {"confirmed": "yes"})
    assert activated.status_code == 302
    draft.refresh_from_db()
    ruleset.refresh_from_db()
    assert (draft.status, ruleset.status) == (RulesetStatus.ACTIVE, RulesetStatus.RETIRED)
    assert ledger_actions("ruleset", draft.pk)[-1] == "ruleset.activate"
    assert ledger_actions("ruleset", ruleset.pk)[-1] == "ruleset.retire"
    listing = html(client.get(reverse("rulesets")))
    assert "Autumn rules" in listing and "Retired" in listing


def test_an_active_or_retired_ruleset_is_written_in_stone(users, client, ruleset):
    retired = ruleset
    active = ruleset_make(name="Newer rules")
    retired.refresh_from_db()
    login(client, users, Role.MANAGER)
    before = counts()
    for frozen in (active, retired):
        response = client.post(reverse("ruleset-activate", args=[frozen.pk]), {"confirmed": "yes"})
        assert response.status_code == 409
        assert "only drafts change" in html(response)
        response = client.get(reverse("ruleset-activate", args=[frozen.pk]))
        assert response.status_code == 409
        assert "only drafts change" in html(response)
        assert client.get(reverse("ruleset-edit", args=[frozen.pk])).status_code == 409
        edited = client.post(reverse("ruleset-edit", args=[frozen.pk]), RULESET_DATA)
        assert edited.status_code == 409
        assert "only drafts change" in html(edited)
    assert counts() == before
    assert reverse("ruleset-activate", args=[active.pk]) not in html(
        client.get(reverse("ruleset", args=[active.pk]))
    )


def test_a_copy_starts_a_new_draft_from_a_ruleset(users, client, ruleset):
    login(client, users, Role.MANAGER)
    form = client.get(reverse("ruleset-new"), {"from": ruleset.pk})
    assert form.context["form"].initial["points"] == "channel:webinar = 10\nkind:form = 5"
    assert form.context["form"].initial["name"] == "Spring rules (copy)"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": ""}, "name", "required"),
        ({"name": "x" * 121}, "name", "at most"),
        ({"points": "channel:webinar: 10"}, "points", "Line 1"),
        ({"points": "channel:webinar = ten"}, "points", "Line 1"),
        ({"points": "kind:form = 5\nkind:form = 6"}, "points", "given twice"),
        ({"points": "channel:telepathy = 5"}, "points", "No channel"),
        ({"points": "kind:dance = 5"}, "points", "No touch kind"),
        ({"points": "colour:blue = 5"}, "points", "is not a rule"),
        ({"points": "kind:form = 5000"}, "points", "between"),
        ({"points": "kind:form = 1\n" * 20_001}, "points", "at most"),
        ({"mql_threshold": "0"}, "mql_threshold", "greater than or equal to 1"),
        ({"mql_threshold": "many"}, "mql_threshold", "whole number"),
        ({"sla_hours": ""}, "sla_hours", "required"),
        ({"sla_hours": "99999"}, "sla_hours", "less than or equal to"),
        ({"sourcing_window_days": "-3"}, "sourcing_window_days", "greater than"),
    ],
)
def test_a_bad_ruleset_names_the_field_and_writes_nothing(
    overrides, field, message, users, client, ruleset
):
    before = counts()
    response = login(client, users, Role.MANAGER).post(
        reverse("ruleset-new"), {**RULESET_DATA, **overrides}
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert counts() == before


def test_a_manager_sets_and_replaces_a_target(users, client):
    login(client, users, Role.MANAGER)
    # A share is typed as people say it: 40 for 40 %.
    response = client.post(
        reverse("targets"), {"period": "2026-Q4", "marketing_pipeline_share": "40"}, follow=True
    )
    assert response.status_code == 200
    assert "Target for 2026-Q4 set." in html(response) and "40 %" in html(response)
    client.post(reverse("targets"), {"period": "2026-Q4", "marketing_pipeline_share": "45.5"})
    target = ContributionTarget.objects.get()
    assert target.marketing_pipeline_share == Decimal("0.455")
    assert "45.5 %" in html(client.get(reverse("targets")))
    assert ledger_actions("target", "2026-Q4") == ["target.set", "target.set"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"period": "2026-Q5", "marketing_pipeline_share": "40"}, "period"),
        ({"period": "Q4 2026", "marketing_pipeline_share": "40"}, "period"),
        ({"period": "", "marketing_pipeline_share": "40"}, "period"),
        ({"period": "1999-Q1", "marketing_pipeline_share": "40"}, "period"),
        ({"period": "2099-Q1", "marketing_pipeline_share": "40"}, "period"),
        ({"period": "2026-Q4", "marketing_pipeline_share": "150"}, "marketing_pipeline_share"),
        ({"period": "2026-Q4", "marketing_pipeline_share": "-1"}, "marketing_pipeline_share"),
        ({"period": "2026-Q4", "marketing_pipeline_share": "half"}, "marketing_pipeline_share"),
        ({"period": "2026-Q4", "marketing_pipeline_share": "45.555"}, "marketing_pipeline_share"),
        ({"period": "2026-Q4", "marketing_pipeline_share": "9" * 400}, "marketing_pipeline_share"),
        ({"period": "2026-Q4"}, "marketing_pipeline_share"),
    ],
)
def test_a_bad_target_names_the_field_and_writes_nothing(data, field, users, client):
    before = counts()
    response = login(client, users, Role.MANAGER).post(reverse("targets"), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert counts() == before
    # In the user's terms: a percentage, never "digits before the decimal point".
    assert "decimal point" not in html(response)


@time_machine.travel("2026-12-05 12:00Z", tick=False)
def test_targets_are_for_quarters_from_five_years_back_to_five_ahead(users, client, api_client_for):
    login(client, users, Role.MANAGER)
    for period in ("2021-Q1", "2031-Q4"):
        ok = client.post(reverse("targets"), {"period": period, "marketing_pipeline_share": "40"})
        assert ok.status_code == 302, period
    for period in ("2020-Q4", "2032-Q1"):
        refused = client.post(
            reverse("targets"), {"period": period, "marketing_pipeline_share": "4"}
        )
        assert refused.status_code == 400
        assert "Give a quarter from 2021-Q1 to 2031-Q4." in html(refused)
    # The API keeps the same range, naming the field.
    api = api_client_for(users[Role.MANAGER])
    response = api.post(
        "/api/v1/targets/", {"period": "2099-Q1", "marketing_pipeline_share": "0.4"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "period"
