"""reports.metrics against an independent computation in plain Python over the same rows.

The oracle below reads every Deal, SaleEvent, Touch, Contact, Handoff and Qualification
and applies the written definitions directly (no aggregates, no SQL sums), for a small
hand-built record and for ``seed_demo``; the hand-built record also has a few numbers
checked by hand.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from contacts.models import Channel, Contact, Touch
from contacts.services import (
    OrganizationInput,
    consent_record,
    contact_create,
    contact_merge,
    touch_record,
)
from handoff import services
from handoff.models import (
    ContributionTarget,
    Deal,
    DealContact,
    Handoff,
    Qualification,
    Ruleset,
    SaleEvent,
)
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from reports import metrics
from reports.aggregates import people_aggregates_refresh
from tests.factories import UserFactory

from .conftest import FROZEN

pytestmark = [pytest.mark.django_db, FROZEN]

SYSTEM = Actor.system("test")
DAY = timedelta(days=1)


# --- the oracle -------------------------------------------------------------------------------


def local_day(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(settings.TIME_ZONE)).date()


def within(moment: datetime | None, start: date, end: date) -> bool:
    return moment is not None and start <= local_day(moment) <= end


def share(part: Decimal, total: Decimal) -> Decimal | None:
    return (part / total).quantize(Decimal("0.0001")) if total > 0 else None


def expected_contribution(start: date, end: date) -> dict[str, Any]:
    deals = list(Deal.objects.all())
    events = list(SaleEvent.objects.all())
    deal_by_id = {deal.pk: deal for deal in deals}
    pipeline = {"marketing": Decimal(0), "sales": Decimal(0)}
    influenced_pipeline = Decimal(0)
    for deal in deals:
        if within(deal.occurred_at, start, end):
            pipeline[deal.source] += deal.amount
            if deal.influenced:
                influenced_pipeline += deal.amount
    revenue = {"marketing": Decimal(0), "sales": Decimal(0)}
    influenced_revenue = Decimal(0)
    sign = {"won": 1, "expansion": 1, "renewal": 1, "churn": -1, "lost": 0}
    for event in events:
        if within(event.occurred_at, start, end):
            deal = deal_by_id[event.deal_id]
            revenue[deal.source] += sign[event.kind] * event.amount
            if deal.influenced:
                influenced_revenue += sign[event.kind] * event.amount
    quarter = f"{end.year}-Q{(end.month - 1) // 3 + 1}"
    target = ContributionTarget.objects.filter(period=quarter).first()
    return {
        "pipeline": (
            pipeline["marketing"],
            pipeline["sales"],
            sum(pipeline.values()),
            share(pipeline["marketing"], sum(pipeline.values(), Decimal(0))),
        ),
        "revenue": (
            revenue["marketing"],
            revenue["sales"],
            sum(revenue.values()),
            share(revenue["marketing"], sum(revenue.values(), Decimal(0))),
        ),
        "target_share": target.marketing_pipeline_share if target else None,
        "influenced": (influenced_pipeline, influenced_revenue),
        "people": expected_people(start, end),
    }


def expected_people(start: date, end: date) -> dict[str, int]:
    won_deals = {
        event.deal_id
        for event in SaleEvent.objects.all()
        if event.kind == "won" and within(event.occurred_at, start, end)
    }
    return {
        "contacts": sum(
            1
            for contact in Contact.objects.all()
            if contact.merged_into_id is None and local_day(contact.created_at) <= end
        ),
        "engaged": len(
            {t.contact_id for t in Touch.objects.all() if within(t.occurred_at, start, end)}
        ),
        "qualified": len(
            {
                q.contact_id
                for q in Qualification.objects.all()
                if q.qualified and within(q.occurred_at, start, end)
            }
        ),
        "handed_off": len(
            {h.contact_id for h in Handoff.objects.all() if within(h.occurred_at, start, end)}
        ),
        "accepted": len(
            {
                h.contact_id
                for h in Handoff.objects.all()
                if h.status == "accepted" and within(h.decided_at, start, end)
            }
        ),
        "customers": len(
            {m.contact_id for m in DealContact.objects.all() if m.deal_id in won_deals}
        ),
    }


def first_of(pairs: Iterator[tuple[int, datetime | None]]) -> dict[int, datetime]:
    firsts: dict[int, datetime] = {}
    for person, moment in pairs:
        if moment is not None and (person not in firsts or moment < firsts[person]):
            firsts[person] = moment
    return firsts


def median_days(
    entered: dict[int, datetime], left: dict[int, datetime], start: date, end: date
) -> float | None:
    days = [
        (moment - entered[person]).total_seconds() / 86400
        for person, moment in left.items()
        if within(moment, start, end) and person in entered and entered[person] <= moment
    ]
    return statistics.median(days) if days else None


def expected_medians(start: date, end: date) -> dict[str, float | None]:
    touches = list(Touch.objects.all())
    handoffs = list(Handoff.objects.all())
    created = {c.pk: c.created_at for c in Contact.objects.all() if c.merged_into_id is None}
    first_touch = first_of((t.contact_id, t.occurred_at) for t in touches)
    first_qualified = first_of(
        (q.contact_id, q.occurred_at) for q in Qualification.objects.all() if q.qualified
    )
    first_handoff = first_of((h.contact_id, h.occurred_at) for h in handoffs)
    first_accepted = first_of(
        (h.contact_id, h.decided_at) for h in handoffs if h.status == "accepted"
    )
    won_at = {e.deal_id: e.occurred_at for e in SaleEvent.objects.all() if e.kind == "won"}
    first_won = first_of(
        (m.contact_id, won_at[m.deal_id]) for m in DealContact.objects.all() if m.deal_id in won_at
    )
    decisions = [
        (h.decided_at - h.occurred_at).total_seconds() / 86400
        for h in handoffs
        if within(h.decided_at, start, end) and h.decided_at and h.decided_at >= h.occurred_at
    ]
    return {
        "contacts": median_days(created, first_touch, start, end),
        "engaged": median_days(first_touch, first_qualified, start, end),
        "qualified": median_days(first_qualified, first_handoff, start, end),
        "handed_off": statistics.median(decisions) if decisions else None,
        "accepted": median_days(first_accepted, first_won, start, end),
        "customers": None,
    }


def expected_leaks(start: date, end: date) -> dict[str, set[int]]:
    end_moment = datetime.combine(end + DAY, datetime.min.time(), ZoneInfo(settings.TIME_ZONE))
    handoffs = list(Handoff.objects.all())
    touches = list(Touch.objects.all())
    merged = {c.pk for c in Contact.objects.all() if c.merged_into_id is not None}
    handed_by_end = {h.contact_id for h in handoffs if h.occurred_at < end_moment}
    qualified = {
        q.contact_id
        for q in Qualification.objects.all()
        if q.qualified and within(q.occurred_at, start, end)
    }
    rejected = set()
    for handoff in handoffs:
        if (
            handoff.status == "rejected"
            and handoff.reason != "duplicate"
            and within(handoff.decided_at, start, end)
        ):
            assert handoff.decided_at is not None
            later_touch = any(
                t.contact_id == handoff.contact_id
                and handoff.decided_at < t.occurred_at < end_moment
                for t in touches
            )
            later_handoff = any(
                h.contact_id == handoff.contact_id
                and handoff.decided_at < h.occurred_at < end_moment
                for h in handoffs
            )
            if not (later_touch or later_handoff):
                rejected.add(handoff.contact_id)
    events = list(SaleEvent.objects.all())
    stalled = {
        deal.pk
        for deal in Deal.objects.all()
        if deal.occurred_at <= end_moment - 90 * DAY
        and not any(e.deal_id == deal.pk and e.occurred_at < end_moment for e in events)
    }
    return {
        "qualified_not_handed_off": qualified - handed_by_end - merged,
        "handoffs_expired": {
            h.contact_id
            for h in handoffs
            if h.status == "expired" and within(h.decided_at, start, end)
        },
        "rejected_not_reengaged": rejected,
        "deals_stalled": stalled,
    }


def check_everything(start: date, end: date) -> None:
    """Every metric for this range equals the oracle's."""
    got = metrics.contribution(start, end)
    want = expected_contribution(start, end)
    for name in ("pipeline", "revenue"):
        split = getattr(got, name)
        assert (
            split.marketing_sourced,
            split.sales_sourced,
            split.total,
            split.marketing_share,
        ) == want[name], (name, start, end)
    assert got.target_share == want["target_share"]
    assert (got.influenced.pipeline, got.influenced.revenue) == want["influenced"]
    assert vars(got.people) == want["people"], (start, end)

    funnel = metrics.funnel(start, end)
    people = want["people"]
    medians = expected_medians(start, end)
    assert [stage.key for stage in funnel.stages] == list(people)
    keys = list(people)
    for index, stage in enumerate(funnel.stages):
        assert stage.people == people[stage.key]
        following = people[keys[index + 1]] if index + 1 < len(keys) else None
        if following is None or people[stage.key] == 0:
            assert stage.conversion_to_next is None
        else:
            assert stage.conversion_to_next == pytest.approx(following / people[stage.key])
        if medians[stage.key] is None:
            assert stage.median_days_in_stage is None, stage.key
        else:
            assert stage.median_days_in_stage == pytest.approx(medians[stage.key]), stage.key
    leaks = expected_leaks(start, end)
    assert {leak.key: leak.count for leak in funnel.leakage} == {
        key: len(ids) for key, ids in leaks.items()
    }
    for key, ids in leaks.items():
        assert set(metrics.LEAK_QUERIES[key](start, end).values_list("id", flat=True)) == ids

    lifetime = {row.source: row for row in metrics.lifetime(start, end)}
    assert set(lifetime) == {"marketing", "sales"}
    deal_by_id = {deal.pk: deal for deal in Deal.objects.all()}
    for source, row in lifetime.items():
        sums = {kind: Decimal(0) for kind in ("won", "expansion", "renewal", "churn")}
        for event in SaleEvent.objects.all():
            if (
                event.kind in sums
                and within(event.occurred_at, start, end)
                and deal_by_id[event.deal_id].source == source
            ):
                sums[event.kind] += event.amount
        assert (row.won, row.expansion, row.renewal, row.churn) == tuple(sums.values())
        assert row.net == sums["won"] + sums["expansion"] + sums["renewal"] - sums["churn"]


def ranges() -> list[tuple[date, date]]:
    today = timezone.localdate()
    return [
        (today - 400 * DAY, today),
        (today - 90 * DAY, today),
        (today - 45 * DAY, today - 20 * DAY),
        (today - 30 * DAY, today - 30 * DAY),
        (today - 10 * DAY, today - 1 * DAY),
        (today, today),
        (today + DAY, today + 40 * DAY),
        (date(2000, 1, 1), date(2000, 12, 31)),
    ]


# --- the hand-built record ---------------------------------------------------------------------


@dataclass
class World:
    people: dict[str, Contact]
    deals: dict[str, Deal]


def _person(name: str, domain: str, age: timedelta) -> Contact:
    contact, _ = contact_create(
        email=f"{name}@{domain}",
        first_name=name.title(),
        organization=OrganizationInput(name=domain.split(".")[0].title(), domain=domain),
        actor=SYSTEM,
        occurred_at=timezone.now() - age,
    )
    return contact


def _touch(contact: Contact, channel: str, age: timedelta) -> None:
    touch_record(
        contact=contact,
        channel=Channel.objects.get(key=channel),
        occurred_at=timezone.now() - age,
        actor=SYSTEM,
    )


def _qualify(contact: Contact, age: timedelta, *, qualified: bool = True) -> None:
    # Scoring writes these; the test sets the moments it needs directly.
    Qualification.objects.create(
        contact=contact,
        ruleset=Ruleset.objects.get(status="active"),
        score=60 if qualified else 10,
        qualified=qualified,
        occurred_at=timezone.now() - age,
    )


def _handoff(contact: Contact, age: timedelta) -> Handoff:
    consent_record(
        contact=contact,
        purpose="sales_contact",
        granted=True,
        source="form",
        actor=SYSTEM,
        occurred_at=timezone.now() - age - DAY,
    )
    return services.handoff_create(contact=contact, actor=SYSTEM, occurred_at=timezone.now() - age)


def _deal(name: str, members: list[Contact], amount: str, age: timedelta) -> Deal:
    organization = members[0].organization
    assert organization is not None
    deal, _ = services.deal_create(
        name=name,
        organization=organization,
        members=[services.Member(member, "champion") for member in members],
        amount=Decimal(amount),
        actor=SYSTEM,
        occurred_at=timezone.now() - age,
    )
    return deal


def _sale(deal: Deal, kind: str, amount: str | None, age: timedelta) -> None:
    services.sale_event_record(
        deal=deal,
        kind=kind,
        amount=Decimal(amount) if amount is not None else None,
        actor=SYSTEM,
        occurred_at=timezone.now() - age,
    )


def build_world() -> World:
    """Eight people, five handoffs (accepted, rejected twice, expired twice), five deals."""
    ruleset = services.ruleset_create(
        name="Test rules", points={}, mql_threshold=100, sla_hours=48, actor=SYSTEM
    )
    services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    rep = cast(User, UserFactory(username="rep", role=Role.SALES_REP))
    ada = _person("ada", "acme.example", 120 * DAY)
    bo = _person("bo", "acme.example", 100 * DAY)
    cy = _person("cy", "initech.example", 80 * DAY)
    di = _person("di", "initech.example", 70 * DAY)
    ed = _person("ed", "globex.example", 60 * DAY)
    flo = _person("flo", "globex.example", 50 * DAY)
    gus = _person("gus", "umbrella.example", 40 * DAY)
    hal = _person("hal", "umbrella.example", 5 * DAY)
    for contact, channel, age in [
        (ada, "web", 110),
        (ada, "email", 60),
        (ada, "webinar", 45),
        (bo, "sales_call", 90),
        (cy, "web", 70),
        (cy, "web", 70),
        (cy, "content", 12),
        (di, "event", 65),
        (ed, "paid_search", 55),
        (ed, "email", 30),
        (flo, "web", 30),
        (gus, "referral", 35),
        (gus, "web", 2),
        (hal, "email", 1),
    ]:
        _touch(contact, channel, age * DAY)
    _qualify(ada, 50 * DAY)
    _qualify(cy, 60 * DAY)
    _qualify(di, 64 * DAY)
    _qualify(ed, 28 * DAY)
    _qualify(flo, 25 * DAY, qualified=False)
    _qualify(gus, 30 * DAY)
    _qualify(ada, 20 * DAY)  # Ada again, after a rescore

    accepted = _handoff(ada, 44 * DAY)
    services.handoff_accept(handoff=accepted, user=rep, occurred_at=timezone.now() - 43 * DAY)
    rejected = _handoff(cy, 40 * DAY)
    services.handoff_reject(
        handoff=rejected, user=rep, reason="bad_timing", occurred_at=timezone.now() - 39 * DAY
    )
    again = _handoff(di, 62 * DAY)
    services.handoff_reject(
        handoff=again, user=rep, reason="no_budget", occurred_at=timezone.now() - 61 * DAY
    )
    _handoff(gus, 20 * DAY)
    _handoff(cy, 8 * DAY)  # Cy again: one person, two handoffs in a range
    services.handoffs_expire_due()

    marketing = _deal("Acme platform", [ada, bo], "1000.00", 30 * DAY)
    _sale(marketing, "won", "1000.00", 10 * DAY)
    _sale(marketing, "expansion", "250.00", 4 * DAY)
    stalled = _deal("Initech pilot", [di], "400.00", 100 * DAY)
    lost = _deal("Globex trial", [ed], "300.00", 20 * DAY)
    _sale(lost, "lost", None, 15 * DAY)
    services.deal_source_override(deal=lost, source="marketing", reason="Webinar", actor=SYSTEM)
    churned = _deal("Initech renewal", [cy, di], "800.00", 200 * DAY)
    _sale(churned, "won", "800.00", 150 * DAY)
    _sale(churned, "renewal", "800.00", 40 * DAY)
    _sale(churned, "churn", "800.00", 3 * DAY)
    fresh = _deal("Umbrella start", [gus], "500.00", 1 * DAY)
    # Open for months, lost two days ago: stalled as of any day before that.
    late = _deal("Initech extension", [di], "700.00", 150 * DAY)
    _sale(late, "lost", None, 2 * DAY)
    quarter = metrics.quarter_of(timezone.localdate())
    services.target_set(period=quarter, share=Decimal("0.4000"), actor=SYSTEM)
    return World(
        people={
            "ada": ada,
            "bo": bo,
            "cy": cy,
            "di": di,
            "ed": ed,
            "flo": flo,
            "gus": gus,
            "hal": hal,
        },
        deals={
            "marketing": marketing,
            "stalled": stalled,
            "lost": lost,
            "churned": churned,
            "fresh": fresh,
        },
    )


@pytest.fixture
def world() -> World:
    return build_world()


def test_hand_built_numbers_checked_by_hand(world: World) -> None:
    people_aggregates_refresh()
    today = timezone.localdate()
    result = metrics.contribution(today - 45 * DAY, today)
    # Deals created in the range: Acme 1,000 (marketing, an accepted handoff preceded it),
    # Globex 300 (overridden to marketing), Umbrella 500 (sales).
    assert result.pipeline.marketing_sourced == Decimal("1300.00")
    assert result.pipeline.sales_sourced == Decimal("500.00")
    assert result.pipeline.marketing_share == Decimal("0.7222")
    # Won 1,000 + expansion 250 (marketing); renewal 800 less churn 800 (sales).
    assert result.revenue.marketing_sourced == Decimal("1250.00")
    assert result.revenue.sales_sourced == Decimal("0.00")
    assert result.target_share == Decimal("0.4000")
    # Hal (created 5 days ago) is a contact by today, not 45 days ago.
    assert result.people.contacts == 8
    assert metrics.contribution(today - 45 * DAY, today - 10 * DAY).people.contacts == 7
    assert result.people.engaged == 6  # ada, cy, ed, flo, gus, hal
    assert result.people.handed_off == 3  # ada, cy (twice), gus
    assert result.people.qualified == 3  # ed, gus, ada (twice)
    assert result.people.accepted == 1
    assert result.people.customers == 2  # ada, bo

    funnel = {leak.key: leak.count for leak in metrics.funnel(today - 90 * DAY, today).leakage}
    # Ed was qualified and never handed off; Gus's and Cy's second handoffs expired; Di was
    # rejected and never heard of again (Cy was touched after the rejection); the Initech
    # pilot stalled.
    assert funnel == {
        "qualified_not_handed_off": 1,
        "handoffs_expired": 2,
        "rejected_not_reengaged": 1,
        "deals_stalled": 1,
    }


def test_hand_built_numbers_equal_the_oracle_before_and_after_the_refresh(world: World) -> None:
    for start, end in ranges():
        check_everything(start, end)  # no aggregates yet: everything counted live
    people_aggregates_refresh()
    for start, end in ranges():
        check_everything(start, end)


def test_rows_and_merges_after_the_refresh_are_counted(world: World) -> None:
    people_aggregates_refresh()
    # A touch, a new person with a back-dated touch, a deal won, a new deal, and merges,
    # all after the refresh.
    _touch(world.people["bo"], "web", 3 * DAY)
    late = _person("ivy", "acme.example", 70 * DAY)
    _touch(late, "email", 65 * DAY)
    _sale(world.deals["fresh"], "won", "500.00", DAY / 2)
    _deal("Acme extension", [world.people["bo"], late], "90.00", 2 * DAY)
    contact_merge(keep=world.people["hal"], merge=world.people["flo"], actor=SYSTEM)
    contact_merge(keep=world.people["ed"], merge=world.people["gus"], actor=SYSTEM)
    for start, end in ranges():
        check_everything(start, end)
    people_aggregates_refresh()
    for start, end in ranges():
        check_everything(start, end)


def test_seed_demo_equals_the_oracle() -> None:
    call_command("seed_demo", contacts=60, verbosity=0)
    people_aggregates_refresh()
    for start, end in ranges():
        check_everything(start, end)
    today = timezone.localdate()
    assert metrics.contribution(today - 400 * DAY, today).people.engaged > 0


def test_shares_and_empty_ranges() -> None:
    empty = metrics.contribution(date(2001, 1, 1), date(2001, 3, 31))
    assert empty.pipeline.total == Decimal("0.00")
    assert empty.pipeline.marketing_share is None
    assert empty.revenue.marketing_share is None
    assert empty.target_share is None
    assert metrics.attribution_by_model(date(2001, 1, 1), date(2001, 3, 31), "channel") == []
    assert metrics.quarter_of(date(2026, 11, 23)) == "2026-Q4"
    assert metrics.quarter_of(date(2026, 1, 1)) == "2026-Q1"
    assert metrics.quarter_first_day(date(2026, 8, 9)) == date(2026, 7, 1)
    with pytest.raises(ValueError, match="group_by"):
        metrics.attribution_by_model(date(2001, 1, 1), date(2001, 3, 31), "weather")
    with pytest.raises(ValueError, match="model"):
        metrics.campaign_roi(date(2001, 1, 1), date(2001, 3, 31), "astrology")


@pytest.mark.parametrize("zone", ["Pacific/Auckland", "America/Los_Angeles"])
def test_days_are_counted_in_the_reporting_time_zone(settings: Any, zone: str) -> None:
    settings.TIME_ZONE = zone
    built = build_world()
    # A touch just before and one just after a local midnight, seen from the zone.
    midnight = datetime.combine(timezone.localdate(), datetime.min.time(), ZoneInfo(zone))
    for moment in (midnight - timedelta(minutes=1), midnight - DAY + timedelta(minutes=1)):
        touch_record(
            contact=built.people["hal"],
            channel=Channel.objects.get(key="web"),
            occurred_at=moment,
            actor=SYSTEM,
        )
    for start, end in ranges():
        check_everything(start, end)
    people_aggregates_refresh()
    for start, end in ranges():
        check_everything(start, end)


def test_a_deal_closed_after_the_range_was_stalled_in_it(world: World) -> None:
    today = timezone.localdate()
    stalled_then = metrics.deals_stalled(today - 45 * DAY, today - 20 * DAY)
    # The pilot, created 100 days ago, was only 80 days old then.
    assert list(stalled_then.values_list("name", flat=True)) == ["Initech extension"]
    assert list(metrics.deals_stalled(today, today).values_list("name", flat=True)) == [
        "Initech pilot"
    ]
