"""Markov's paths: converting and non-converting ones in one unit (the buying group) and
one window (the lookback before the moment the outcome was known)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts.models import Channel, Contact
from contacts.services import consent_record
from handoff import services
from reports.run_input import run_input_read
from tests.factories import contact_make
from tests.reports.conftest import SYSTEM, touch

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def deal_with(
    members: list[Contact], *, opened: timedelta, outcome: str = "", at: timedelta = DAY
) -> object:
    organization = members[0].organization
    assert organization is not None
    deal, _ = services.deal_create(
        name="Deal",
        organization=organization,
        members=[services.Member(member, "champion") for member in members],
        amount=Decimal("500.00"),
        actor=SYSTEM,
        occurred_at=timezone.now() - opened,
    )
    if outcome:
        services.sale_event_record(
            deal=deal,
            kind=outcome,
            amount=Decimal("500.00") if outcome == "won" else None,
            actor=SYSTEM,
            occurred_at=timezone.now() - at,
        )
    return deal


def nonconverting_paths(lookback_days: int = 30) -> list[list[str]]:
    data = run_input_read(lookback_days=lookback_days)
    keys = dict(Channel.objects.values_list("id", "key"))
    starts = [*data.nonconverting_starts.tolist(), data.nonconverting_channel.size]
    channels = [keys[c] for c in data.nonconverting_channel.tolist()]
    return sorted(channels[a:b] for a, b in itertools.pairwise(starts))


def test_a_lost_deal_is_one_path_of_its_buying_group_before_the_loss() -> None:
    ann = contact_make(organization="lost.example")
    ben = contact_make(organization="lost.example")
    touch(ann, "web", 100 * DAY)  # more than 30 days before the loss: outside the window
    touch(ann, "email", 70 * DAY)
    touch(ben, "webinar", 65 * DAY)
    touch(ann, "content", 10 * DAY)  # after the loss: not on its path
    deal_with([ann, ben], opened=90 * DAY, outcome="lost", at=60 * DAY)
    assert nonconverting_paths() == [["email", "webinar"]]


def test_an_open_deal_and_people_in_no_deal_look_back_from_now_by_group() -> None:
    # An open deal: its group's touches in the 30 days before now.
    cat = contact_make(organization="open.example")
    dan = contact_make(organization="open.example")
    touch(cat, "web", 40 * DAY)
    touch(cat, "email", 20 * DAY)
    touch(dan, "webinar", 10 * DAY)
    deal_with([cat, dan], opened=30 * DAY)
    # Two people of one organization in no deal: one forming buying group.
    eve = contact_make(organization="forming.example")
    fay = contact_make(organization="forming.example")
    touch(eve, "content", 5 * DAY)
    touch(fay, "web", 4 * DAY)
    # A person without an organization is a group of one.
    loner = Contact.objects.get(pk=contact_make().pk)
    Contact.objects.filter(pk=loner.pk).update(organization=None)
    touch(loner, "referral", 3 * DAY)
    assert nonconverting_paths() == [["content", "web"], ["email", "webinar"], ["referral"]]


def test_won_deals_are_not_non_converting_and_withdrawn_people_are_left_out() -> None:
    gil = contact_make(organization="won.example")
    hal = contact_make(organization="won.example")
    touch(gil, "web", 20 * DAY)
    touch(hal, "email", 15 * DAY)
    deal_with([gil, hal], opened=25 * DAY, outcome="won", at=5 * DAY)
    ivy = contact_make(organization="lost2.example")
    touch(ivy, "webinar", 20 * DAY)
    deal_with([ivy], opened=25 * DAY, outcome="lost", at=5 * DAY)
    consent_record(
        contact=ivy, purpose="analytics", granted=False, source="preferences", actor=SYSTEM
    )
    assert nonconverting_paths() == []
    data = run_input_read(lookback_days=30)
    assert data.conversions == 1 and data.touch_channel.size == 2
