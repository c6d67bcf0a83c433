"""A small hand-built record shared by the report tests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts.models import Channel, Contact
from contacts.services import touch_record
from handoff import services
from leadrecord.ledger import Actor
from tests.factories import contact_make

SYSTEM = Actor.system("test")
DAY = timedelta(days=1)
# Reports read "today" and "this quarter" from the clock, and the tests write their record
# relative to now: a run crossing a midnight or a quarter's end would read another range
# than it wrote. Tests that depend on it start at this moment (the clock running): the
# middle of a quarter, and of the day in UTC, Auckland and Los Angeles alike.
FROZEN_NOW = datetime(2026, 5, 20, 3, 0, tzinfo=UTC)
FROZEN = pytest.mark.time_machine(FROZEN_NOW, tick=True)


def touch(contact: Contact, channel: str, age: timedelta) -> None:
    touch_record(
        contact=contact,
        channel=Channel.objects.get(key=channel),
        occurred_at=timezone.now() - age,
        actor=SYSTEM,
    )


def won_deal(
    members: list[Contact], *, amount: str, opened: timedelta, won: timedelta, name: str = "Deal"
) -> None:
    organization = members[0].organization
    assert organization is not None
    deal, _ = services.deal_create(
        name=name,
        organization=organization,
        members=[services.Member(member, "champion") for member in members],
        amount=Decimal(amount),
        actor=SYSTEM,
        occurred_at=timezone.now() - opened,
    )
    services.sale_event_record(
        deal=deal,
        kind="won",
        amount=Decimal(amount),
        actor=SYSTEM,
        occurred_at=timezone.now() - won,
    )


@pytest.fixture
def record() -> dict[str, Contact]:
    """Ada (web, then email) and Bo (a sales call) buy for 1,000; Cy only browses."""
    ada = contact_make(organization="acme.example")
    bo = contact_make(organization="acme.example")
    cy = contact_make(organization="initech.example")
    touch(ada, "web", 30 * DAY)
    touch(ada, "email", 20 * DAY)
    touch(bo, "sales_call", 10 * DAY)
    touch(cy, "web", 12 * DAY)
    touch(cy, "content", 11 * DAY)
    won_deal([ada, bo], amount="1000.00", opened=15 * DAY, won=5 * DAY)
    return {"ada": ada, "bo": bo, "cy": cy}
