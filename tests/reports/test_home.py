"""Each role's home page counts the day's work, every number a link to its list."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from contacts.models import Organization
from contacts.services import consent_record, contact_erase
from handoff import services
from handoff.models import Handoff
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from tests.factories import contact_make
from tests.handoff.test_pages import consenting, ruleset_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _figures(response: Any) -> dict[str, tuple[str, str]]:
    assert response.status_code == 200
    return {
        figure.label: (figure.value, figure.url)
        for section in response.context["work"]
        for figure in section.figures
    }


def test_a_reps_home_counts_the_queue_by_sla_and_their_open_deals(users):
    ruleset_make(sla_hours=48)
    rep = users[Role.SALES_REP]
    now = timezone.now()
    with time_machine.travel(now - timedelta(hours=60), tick=False):
        services.handoff_create(contact=consenting("late@acme.example"), actor=SYSTEM)
    with time_machine.travel(now - timedelta(hours=40), tick=False):
        services.handoff_create(contact=consenting("soon@acme.example"), actor=SYSTEM)
    services.handoff_create(contact=consenting("fresh@acme.example"), actor=SYSTEM)
    buyer = contact_make(email="buyer@deal.example", organization="deal.example")
    services.deal_create(
        name="Deal",
        organization=cast(Organization, buyer.organization),
        members=[services.Member(buyer, "champion")],
        amount=Decimal("100.00"),
        owner=rep,
        actor=Actor.of(rep),
    )
    figures = _figures(_client(rep).get("/"))
    assert figures["People waiting for you"] == ("3", "/handoffs/")
    assert figures["Due soon"][0] == "1"
    assert figures["Overdue"][0] == "1"
    assert figures["Your open deals"] == ("1", f"/deals/?owner={rep.pk}&state=open")
    # The link gives the same number.
    deals = _client(rep).get(figures["Your open deals"][1])
    assert deals.context["table"].paginator.count == 1
    page = _client(rep).get("/").content.decode()
    assert 'href="/handoffs/"' in page


def test_a_marketers_home_counts_returns_imports_and_who_can_be_handed_off(users):
    ruleset_make()
    marketer = users[Role.MARKETER]
    handoff = services.handoff_create(contact=consenting("back@acme.example"), actor=SYSTEM)
    services.handoff_reject(handoff=handoff, user=users[Role.SALES_REP], reason="no_budget")
    figures = _figures(_client(marketer).get("/"))
    assert figures["Handoffs returned in the last 30 days"] == ("1", "/handoffs/returned/")
    assert figures["Your imports in the last 30 days"][0] == "0"
    value, url = figures["People you can hand off"]
    assert url == "/contacts/?can_hand_off=true"
    listed = _client(marketer).get(url).context["table"].paginator.count
    assert int(value) == listed


def test_a_managers_home_shows_contribution_against_target_and_stalled_deals(users):
    manager = users[Role.MANAGER]
    figures = _figures(_client(manager).get("/"))
    assert figures["Target share"][0] == "—"
    assert figures["Stalled deals"][0] == "0"
    assert figures["Stalled deals"][1].startswith("/reports/lists/deals-stalled/")
    note = _client(manager).get("/").content.decode()
    assert "No target is set for this quarter yet." in note


def test_the_privacy_officers_home_counts_withdrawals_exports_and_erasures(users):
    person = contact_make(email="ask@acme.example")
    consent_record(
        contact=person, purpose="marketing_email", granted=False, source="email", actor=SYSTEM
    )
    contact_erase(contact=contact_make(email="gone@acme.example"), actor=SYSTEM)
    figures = _figures(_client(users[Role.PRIVACY_OFFICER]).get("/"))
    assert figures["Consents withdrawn"][0] == "1"
    assert figures["People erased"][0] == "1"
    assert figures["People erased"][1].startswith("/record/?action=contact.erase")
    assert _client(users[Role.PRIVACY_OFFICER]).get(figures["People erased"][1]).status_code == 200


def test_an_integration_or_a_user_without_a_role_has_no_work_numbers(users, make_user):
    assert _figures(_client(users[Role.INTEGRATION]).get("/")) == {}
    assert _figures(_client(make_user()).get("/")) == {}
    assert Client().get("/").status_code == 302
    assert Handoff.objects.count() == 0


def test_the_privacy_officers_home_counts_the_erasure_requests_still_waiting(users):
    from buyers.portal import portal_erasure_request

    waiting = contact_make(email="asks@acme.example")
    answered = contact_make(email="asked@acme.example")
    portal_erasure_request(contact=waiting)
    portal_erasure_request(contact=waiting)  # asking again is one request
    portal_erasure_request(contact=answered)
    contact_erase(contact=answered, actor=SYSTEM)
    client = _client(users[Role.PRIVACY_OFFICER])
    figures = _figures(client.get("/"))
    assert figures["Erasure requests waiting"][0] == "1"
    queue = client.get(figures["Erasure requests waiting"][1])
    assert queue.status_code == 200
    assert f'href="/contacts/{waiting.pk}/"' in queue.content.decode()
    assert f'href="/contacts/{answered.pk}/"' not in queue.content.decode()
