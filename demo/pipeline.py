"""The demo pipeline: a year of campaigns, touches, rulesets, handoffs, deals and sales.

Two halves, as in ``demo.people``. ``demo_pipeline`` is pure: from the demo
people (``demo.people.demo_people``), the seed and the sales reps' names it
plans everything as plain data, every time in seconds *before* an anchor, so
the same seed always gives the same year. ``demo_pipeline_seed`` writes the
plan through the services (campaigns, touches by ``events_ingest`` in batches,
rulesets, handoffs and their decisions, the SLA's expiry, deals with buying
groups, sale events, overrides, targets), so every row is on the ledger,
anchored where the people were.

The story the plan tells: people arrive through marketing (a form, a webinar,
a badge scan) and are nurtured, mostly early in their journey; once the
ruleset in force qualifies a person who gave their say-so, marketing hands
them to sales, which accepts, rejects with a reason, or lets the SLA lapse;
returned people are sometimes handed off again later. Reps open deals from
accepted handoffs and, for accounts they prospect themselves, without one;
buying groups of one to four people of the account take meetings and calls;
deals are won or lost, and won accounts expand, renew (six-month pilots come
up for renewal within the year) or churn. The ruleset was revised 150 days
ago: older handoffs were made under the first (now retired) version.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from contacts.models import (
    JOURNEY_STAGE_KEY,
    SELF_DECLARED_SOURCES,
    Audience,
    Campaign,
    Channel,
    ConsentPurpose,
    Contact,
    JourneyStage,
    Organization,
    Team,
    Touch,
)
from contacts.services import campaign_create
from demo.people import DAY, HOUR, MINUTE, DemoDataset, DemoPerson, demo_people
from events.ingest import MAX_EVENTS, events_ingest
from handoff.models import (
    BuyingRole,
    ContributionTarget,
    Deal,
    DealSource,
    DealState,
    Handoff,
    HandoffStatus,
    Qualification,
    RejectReason,
    Ruleset,
    SaleEvent,
    SaleKind,
)
from handoff.services import (
    Member,
    contacts_rescore_all,
    deal_create,
    deal_source_override,
    handoff_accept,
    handoff_create,
    handoff_reject,
    handoffs_expire_due,
    ruleset_activate,
    ruleset_create,
    sale_event_record,
    target_set,
)
from leadrecord.ledger import Actor

YEAR = 365 * DAY
# The ruleset in force changed 150 days before the anchor.
ERA_SWITCH = 150 * DAY
# Handoffs of the past are decided (or lapsed); the queue's are planned apart.
MIN_HISTORIC_HANDOFF_AGE = 4 * DAY
SOURCING_WINDOW_DAYS = 90
TOUCH_SOURCE_MARKETING = "marketing-automation"
TOUCH_SOURCE_CRM = "crm"
DEAL_SOURCE_SYSTEM = "crm"


# --- the rules ------------------------------------------------------------------


@dataclass(frozen=True)
class DemoRuleset:
    name: str
    points: dict[str, int]
    mql_threshold: int
    sla_hours: int
    sourcing_window_days: int = SOURCING_WINDOW_DAYS


# Sales activity earns no points: a person is marketing-qualified by what
# marketing's channels and the person's own disclosures show.
RULESETS = (
    DemoRuleset(
        name="Launch rules",
        points={
            "channel:webinar": 15,
            "channel:event": 15,
            "channel:content": 8,
            "channel:referral": 15,
            "channel:partner": 8,
            "channel:paid_search": 3,
            "channel:paid_social": 2,
            "channel:email": 1,
            "channel:web": 1,
            "kind:form": 10,
            "kind:download": 5,
            "kind:webinar_attended": 10,
            "kind:event_attended": 10,
            "kind:email_click": 3,
            "kind:ad_click": 2,
            "disclosure:budget": 15,
            "disclosure:timeline": 10,
        },
        mql_threshold=60,
        sla_hours=72,
    ),
    DemoRuleset(
        name="Revised after the Q2 pipeline review",
        points={
            "channel:webinar": 12,
            "channel:event": 12,
            "channel:content": 6,
            "channel:referral": 20,
            "channel:partner": 10,
            "channel:paid_search": 4,
            "channel:paid_social": 3,
            "channel:email": 1,
            "channel:web": 1,
            "channel:organic_social": 1,
            "kind:form": 10,
            "kind:download": 5,
            "kind:webinar_attended": 15,
            "kind:event_attended": 12,
            "kind:email_click": 3,
            "kind:ad_click": 2,
            "disclosure:budget": 20,
            "disclosure:timeline": 15,
            "disclosure:team_size": 5,
            "disclosure:use_case": 5,
            f"disclosure:{JOURNEY_STAGE_KEY}": 10,
        },
        mql_threshold=50,
        sla_hours=48,
    ),
)
RETIRED, ACTIVE = 0, 1

# The agreed share of pipeline marketing should source, oldest quarter first.
TARGET_SHARES = (Decimal("0.35"), Decimal("0.40"), Decimal("0.40"), Decimal("0.45"))


# --- campaigns and channels -----------------------------------------------------

# name, channel, utm_source, utm_medium, runs from/to (days before the anchor), cost range.
_CAMPAIGNS: tuple[tuple[str, str, str, str, int, int, tuple[int, int]], ...] = (
    ("Newsletter: monthly edition", "email", "newsletter", "email", 365, 0, (6_000, 9_000)),
    ("Nurture: attribution basics", "email", "nurture", "email", 330, 120, (2_000, 4_000)),
    ("Nurture: closing the handoff loop", "email", "nurture", "email", 160, 0, (2_000, 4_000)),
    ("Search: lead routing software", "paid_search", "google", "cpc", 360, 0, (24_000, 36_000)),
    ("Search: marketing attribution", "paid_search", "google", "cpc", 200, 0, (12_000, 20_000)),
    (
        "Social: pipeline contribution",
        "paid_social",
        "linkedin",
        "paid_social",
        300,
        180,
        (9_000, 15_000),
    ),
    (
        "Social: consent-first marketing",
        "paid_social",
        "linkedin",
        "paid_social",
        170,
        20,
        (9_000, 15_000),
    ),
    ("Webinar: From MQL to revenue", "webinar", "webinar", "webinar", 340, 300, (3_000, 6_000)),
    (
        "Webinar: Sales and marketing, one record",
        "webinar",
        "webinar",
        "webinar",
        250,
        210,
        (3_000, 6_000),
    ),
    ("Webinar: Consent by design", "webinar", "webinar", "webinar", 150, 110, (3_000, 6_000)),
    (
        "Webinar: Attribution without the guesswork",
        "webinar",
        "webinar",
        "webinar",
        70,
        30,
        (3_000, 6_000),
    ),
    (
        "Trade show: B2B Revenue Summit",
        "event",
        "revenue-summit",
        "event",
        290,
        280,
        (30_000, 45_000),
    ),
    ("Roadshow: customer breakfasts", "event", "roadshow", "event", 120, 95, (12_000, 18_000)),
    (
        "Guide: the revenue attribution handbook",
        "content",
        "website",
        "content",
        355,
        0,
        (4_000, 7_000),
    ),
    ("Report: state of the lead handoff", "content", "website", "content", 220, 0, (6_000, 9_000)),
    ("Template: the marketing-sales SLA", "content", "website", "content", 100, 0, (1_500, 3_000)),
    (
        "Partner: CRM integration co-marketing",
        "partner",
        "partner",
        "partner",
        280,
        0,
        (8_000, 12_000),
    ),
    ("Customer referral programme", "referral", "customers", "referral", 365, 0, (5_000, 8_000)),
)

# How a person first arrived (their consents' source) and the touch it left.
_ARRIVAL_TOUCHES = {
    "pricing-page form": ("web", "form"),
    "webinar registration": ("webinar", "form"),
    "whitepaper download": ("content", "download"),
    "newsletter signup": ("email", "form"),
    "trade-show badge scan": ("event", "event_attended"),
    "contact-sales form": ("web", "form"),
    "free-trial signup": ("web", "form"),
}
# Marketing's later touches: channel, weight, kinds with weights.
_NURTURE: tuple[tuple[str, int, tuple[tuple[str, int], ...]], ...] = (
    ("email", 30, (("email_open", 3), ("email_click", 1))),
    ("web", 24, (("visit", 6), ("form", 1))),
    ("paid_search", 8, (("ad_click", 1),)),
    ("paid_social", 8, (("ad_click", 1),)),
    ("organic_social", 6, (("visit", 1),)),
    ("content", 10, (("download", 1),)),
    ("webinar", 7, (("webinar_attended", 2), ("form", 1))),
    ("event", 3, (("event_attended", 1),)),
    ("partner", 2, (("other", 1), ("referral", 1))),
    ("referral", 2, (("referral", 1),)),
)
# A rep's activity: channel and kind, weighted.
_SALES_ACTIVITY = (
    (("sales_email", "other"), 35),
    (("sales_call", "call"), 35),
    (("sales_meeting", "meeting"), 30),
)
_CAMPAIGN_CHANCE = 0.85

# --- people in the sales process ------------------------------------------------

_JOURNEYS = (("marketing", 78), ("sales", 10), ("none", 12))
_HANDOFF_CHANCE = 0.88
_OUTCOMES = (("accepted", 64), ("rejected", 23), ("expired", 13))
_SECOND_OUTCOMES = (("accepted", 72), ("rejected", 20), ("expired", 8))
_RECYCLE_CHANCE = 0.4
_RECYCLED_REASONS = frozenset({RejectReason.BAD_TIMING, RejectReason.NO_BUDGET})

_HANDOFF_NOTES = {
    "consent:sales_contact": (
        "Asked to be contacted by sales; engaged with our content for weeks.",
        "Requested a call on the form; fits our ideal customer profile.",
        "Attended the webinar and asked about pricing.",
        "Several visits to the pricing page this week; gave consent to a sales call.",
        "",
    ),
    "stage:ready_to_talk": (
        "Says they are ready to talk; comparing us with two other tools.",
        "Told us they are ready for a conversation about a rollout.",
        "",
    ),
}
_REJECTIONS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    (
        RejectReason.NOT_A_FIT,
        25,
        (
            "Two-person team on spreadsheets; too small for us today.",
            "Looking for an email tool, not lead management.",
            "Agency researching for a client; no buying role.",
        ),
    ),
    (
        RejectReason.NO_BUDGET,
        20,
        (
            "Budget frozen until next fiscal year.",
            "Likes it, but no budget line this year; revisit in the new year.",
            "",
        ),
    ),
    (
        RejectReason.BAD_TIMING,
        25,
        (
            "Mid-way through a CRM migration; asked us to come back in three months.",
            "Evaluating next quarter; reminder booked.",
            "",
        ),
    ),
    (
        RejectReason.UNREACHABLE,
        15,
        (
            "Three calls and two emails, no answer.",
            "Phone number bounces; the email auto-reply says on leave for a month.",
        ),
    ),
    (
        RejectReason.DUPLICATE,
        5,
        ("Already in conversation with a colleague on an open opportunity.",),
    ),
    (
        RejectReason.OTHER,
        10,
        (
            "Works for a current customer's agency; routed to account management.",
            "Competitor doing research.",
        ),
    ),
)

# --- deals ----------------------------------------------------------------------

_DEAL_FROM_HANDOFF_CHANCE = 0.72
_LATE_DEAL_CHANCE = 0.06  # opened after the sourcing window had passed
_SALES_DEAL_CHANCE = 0.5  # an account the reps prospect themselves
_GROUP_SIZES = ((1, 20), (2, 35), (3, 30), (4, 15))
_WIN_CHANCE: dict[str, float] = {DealSource.MARKETING: 0.55, DealSource.SALES: 0.45}
_PILOT_CHANCE = 0.45  # six-month pilots come up for renewal within the year
_EXPANSION_CHANCE = 0.35
_RENEWAL_CHANCE = 0.8
_MIDTERM_CHURN_CHANCE = 0.04
_EXECUTIVES = frozenset(
    {
        "CEO",
        "CFO",
        "COO",
        "CTO",
        "VP Marketing",
        "Head of IT",
        "Head of Sales",
        "Head of Operations",
        "Finance Director",
    }
)
_PRACTITIONERS = frozenset(
    {"Engineer", "Senior Engineer", "Data Analyst", "Sales Operations Analyst", "IT Manager"}
)
_OVERRIDE_REASONS = {
    DealSource.MARKETING: (
        "Met at our trade-show booth; the badge scan reached the rep by phone the same day, "
        "never through a handoff. Agreed in the monthly pipeline review."
    ),
    DealSource.SALES: (
        "The account executive had been working this account since the previous quarter; "
        "the handoff repeated an open conversation. Agreed with marketing operations."
    ),
}


# --- the pure half: plain data from (people, seed, reps) ------------------------


@dataclass(frozen=True)
class PlannedCampaign:
    name: str
    channel: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    cost: Decimal
    age: int  # seconds before the anchor: when it started
    ends_age: int


@dataclass(frozen=True)
class PlannedTouch:
    email: str
    channel: str
    kind: str
    campaign: int | None  # index into the plan's campaigns
    age: int


@dataclass(frozen=True)
class PlannedHandoff:
    email: str
    ruleset: int  # RETIRED or ACTIVE: which one was in force
    age: int
    note: str
    assigned_to: str | None
    outcome: str  # accepted, rejected, expired or pending
    decided_by: str | None = None
    decided_age: int | None = None
    reason: str = ""
    decision_note: str = ""

    @property
    def returned_age(self) -> int | None:
        """When it came back to marketing (rejected or lapsed), if it did."""
        if self.outcome == "rejected":
            return self.decided_age
        if self.outcome == "expired":
            return self.age - RULESETS[self.ruleset].sla_hours * HOUR
        return None


@dataclass(frozen=True)
class PlannedMember:
    email: str
    role: str


@dataclass(frozen=True)
class PlannedSale:
    kind: str
    amount: Decimal | None
    age: int


@dataclass(frozen=True)
class PlannedDeal:
    name: str
    organization_domain: str
    members: tuple[PlannedMember, ...]
    amount: Decimal
    owner: str
    age: int
    external_id: str
    opened_from: int | None  # index of the accepted handoff it came from, if any
    expected_source: str  # what the evidence will say (see ``_expected_source``)
    sales: tuple[PlannedSale, ...]


@dataclass(frozen=True)
class PlannedOverride:
    deal: int  # index into the plan's deals
    source: str
    reason: str


@dataclass(frozen=True)
class DemoPipeline:
    campaigns: tuple[PlannedCampaign, ...]
    touches: tuple[PlannedTouch, ...]
    handoffs: tuple[PlannedHandoff, ...]  # oldest first
    deals: tuple[PlannedDeal, ...]  # oldest first
    overrides: tuple[PlannedOverride, ...]
    target_shares: tuple[Decimal, ...]


@dataclass
class _Person:
    """Working state for one person while planning."""

    person: DemoPerson
    org: str
    age: int
    journey: str
    signal_since: int | None  # since when the buyer's say-so has held (age), if it holds now
    eligible: list[int | None] = field(default_factory=lambda: [None, None])
    touches: list[PlannedTouch] = field(default_factory=list)


def demo_pipeline(dataset: DemoDataset, seed: int, reps: Sequence[str]) -> DemoPipeline:
    """The demo year for ``dataset``'s people, a function of its arguments alone."""
    if not reps:
        raise ValueError("The demo pipeline needs at least one sales rep.")
    rng = random.Random(f"pipeline:{seed}")  # noqa: S311 -- reproducible demo data
    campaigns = _campaigns(rng) if dataset.people else []
    org_index = {org.domain: index for index, org in enumerate(dataset.organizations)}
    territory = {domain: reps[index % len(reps)] for domain, index in org_index.items()}
    people: dict[str, _Person] = {}
    for person in dataset.people:
        planned = _Person(
            person=person,
            org=person.organization_domain,
            age=_seconds(person.age),
            journey=_weighted(rng, _JOURNEYS),
            signal_since=_signal_since(person),
        )
        if planned.journey == "marketing":
            _marketing_touches(rng, planned, campaigns)
            for era, ruleset in enumerate(RULESETS):
                crossing = _crossing(planned, ruleset)
                if crossing is not None and planned.signal_since is not None:
                    planned.eligible[era] = min(crossing, planned.signal_since)
        people[person.email] = planned

    handoffs = _handoffs(rng, people, reps, territory)
    for handoff in handoffs:
        _handoff_touches(rng, people[handoff.email], handoff)
    deals = _deals(rng, dataset, people, handoffs, territory)
    in_deals = {member.email for deal in deals for member in deal.members}
    for planned in people.values():
        if planned.journey == "sales" and planned.person.email not in in_deals:
            _prospecting_touches(rng, planned)
    touches = sorted(
        (touch for planned in people.values() for touch in planned.touches),
        key=lambda touch: (-touch.age, touch.email, touch.channel, touch.kind),
    )
    return DemoPipeline(
        campaigns=tuple(campaigns),
        touches=tuple(touches),
        handoffs=tuple(handoffs),
        deals=tuple(deals),
        overrides=tuple(_overrides(deals, people)),
        target_shares=TARGET_SHARES,
    )


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def _weighted(rng: random.Random, options: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([option for option, _ in options], [weight for _, weight in options])[0]


def _slug(text: str) -> str:
    return "-".join("".join(c for c in word.lower() if c.isalnum()) for word in text.split())


def _campaigns(rng: random.Random) -> list[PlannedCampaign]:
    campaigns = []
    for name, channel, source, medium, starts, ends, (low, high) in _CAMPAIGNS:
        cost = Decimal(round(rng.randint(low, high), -2)).quantize(Decimal("0.01"))
        campaigns.append(
            PlannedCampaign(
                name=name,
                channel=channel,
                utm_source=source,
                utm_medium=medium,
                utm_campaign=_slug(name.split(": ", 1)[-1]),
                cost=cost,
                age=starts * DAY - rng.randint(0, 8 * HOUR),
                ends_age=ends * DAY,
            )
        )
    return campaigns


_MARKETING_SEES = (Audience.MARKETING, Audience.ALL)


def _signal_since(person: DemoPerson) -> int | None:
    """Since when (age) the buyer's say-so has held, if it holds at the anchor.

    The same reading as ``handoff.services.buyer_signal`` for the marketer who
    hands people off: the latest ``sales_contact`` consent granted, or the
    latest journey stage the person declared themselves that marketing may see
    (neither withdrawn nor expired) ``ready_to_talk``.
    """
    since: list[int] = []
    consents = sorted(
        (
            (-_seconds(consent.age), number, consent.granted)
            for number, consent in enumerate(person.consents)
            if consent.purpose == ConsentPurpose.SALES_CONTACT
        ),
    )
    granted_since: int | None = None
    for negative_age, _, granted in consents:
        if not granted:
            granted_since = None
        elif granted_since is None:
            granted_since = -negative_age
    if granted_since is not None:
        since.append(granted_since)
    stages = sorted(
        (-_seconds(disclosure.age), number, disclosure.value)
        for number, disclosure in enumerate(person.disclosures)
        if disclosure.key == JOURNEY_STAGE_KEY
        and disclosure.source in SELF_DECLARED_SOURCES
        and disclosure.audience in _MARKETING_SEES
        and _valid_now(disclosure)
    )
    if stages and stages[-1][2] == JourneyStage.READY_TO_TALK:
        since.append(-stages[-1][0])
    return max(since) if since else None


def _valid_now(disclosure: Any) -> bool:
    """Neither withdrawn nor expiring within a day of the anchor (a margin for the run)."""
    if disclosure.withdrawn_age is not None:
        return False
    return disclosure.expires_in is None or disclosure.expires_in > timedelta(days=1)


def _touch_add(
    planned: _Person, channel: str, kind: str, age: int, campaign: int | None = None
) -> None:
    """A touch, if it falls within the person's life on record (after arrival, before now)."""
    if MINUTE <= age <= planned.age - MINUTE:
        planned.touches.append(PlannedTouch(planned.person.email, channel, kind, campaign, age))


def _arrival(person: DemoPerson) -> str | None:
    for consent in sorted(person.consents, key=lambda consent: -consent.age):
        if consent.source in _ARRIVAL_TOUCHES:
            return consent.source
    return None


def _campaign_for(
    rng: random.Random, campaigns: Sequence[PlannedCampaign], channel: str, age: int
) -> int | None:
    running = [
        index
        for index, campaign in enumerate(campaigns)
        if campaign.channel == channel and campaign.ends_age <= age <= campaign.age
    ]
    if not running or rng.random() >= _CAMPAIGN_CHANCE:
        return None
    return rng.choice(running)


def _marketing_touches(
    rng: random.Random, planned: _Person, campaigns: Sequence[PlannedCampaign]
) -> None:
    """The arrival touch, then nurture: most touches early in the journey, a few late."""
    arrival = _arrival(planned.person)
    channel, kind = _ARRIVAL_TOUCHES.get(arrival or "", ("web", "visit"))
    first = planned.age - rng.randint(MINUTE, 5 * MINUTE)
    _touch_add(planned, channel, kind, first, _campaign_for(rng, campaigns, channel, first))
    count = min(30, int(rng.expovariate(1 / 7)))
    span = max(0, first - 2 * MINUTE)
    for _ in range(count):
        age = first - int(span * rng.random() ** 2.2) - rng.randint(0, MINUTE)
        channel = _weighted(rng, [(row[0], row[1]) for row in _NURTURE])
        kinds = next(row[2] for row in _NURTURE if row[0] == channel)
        kind = _weighted(rng, kinds)
        _touch_add(planned, channel, kind, age, _campaign_for(rng, campaigns, channel, age))


def _crossing(planned: _Person, ruleset: DemoRuleset) -> int | None:
    """When (age) the person's score under ``ruleset`` first reached its threshold, if it did.

    Counted as ``handoff.scoring`` counts at the anchor: every touch, and each
    disclosed key sales may see once, from its first disclosure still valid.
    """
    points = ruleset.points
    moments: list[tuple[int, int]] = [
        (
            -touch.age,
            points.get(f"channel:{touch.channel}", 0) + points.get(f"kind:{touch.kind}", 0),
        )
        for touch in planned.touches
    ]
    first_disclosed: dict[str, int] = {}
    for disclosure in planned.person.disclosures:
        if disclosure.audience not in (Audience.SALES, Audience.ALL):
            continue
        if not _valid_now(disclosure):
            continue
        age = _seconds(disclosure.age)
        first_disclosed[disclosure.key] = max(age, first_disclosed.get(disclosure.key, 0))
    moments += [(-age, points.get(f"disclosure:{key}", 0)) for key, age in first_disclosed.items()]
    score = 0
    for negative_age, gained in sorted(moments):
        score += gained
        if score >= ruleset.mql_threshold:
            return -negative_age
    return None


def _era(age: int) -> int:
    return RETIRED if age > ERA_SWITCH else ACTIVE


def _pending_slots(rng: random.Random, people: int) -> list[int]:
    """Ages of the handoffs waiting in the queue at the anchor: some overdue, some due soon."""
    sla = RULESETS[ACTIVE].sla_hours * HOUR
    slots = [
        sla + rng.randint(6, 20) * HOUR,  # overdue
        sla - rng.randint(2, 10) * HOUR,  # due soon (the last quarter of the SLA)
        rng.randint(2, 20) * HOUR,  # on time
    ]
    if people >= 120:
        slots += [
            sla + rng.randint(1, 5) * HOUR,
            sla - rng.randint(2, 10) * HOUR,
            rng.randint(2, 20) * HOUR,
        ]
    return sorted(slots, reverse=True)


def _decision(
    rng: random.Random,
    outcome: str,
    ruleset: int,
    age: int,
    assigned: str | None,
    territory_rep: str,
    reps: Sequence[str],
) -> dict[str, Any]:
    if outcome == "expired":
        return {}
    sla = RULESETS[ruleset].sla_hours * HOUR
    delay = int(rng.triangular(30 * MINUTE, sla - HOUR, 5 * HOUR))
    rep = assigned or (territory_rep if rng.random() < 0.7 else rng.choice(list(reps)))
    decided: dict[str, Any] = {"decided_by": rep, "decided_age": age - delay}
    if outcome == "rejected":
        reason, _, notes = rng.choices(_REJECTIONS, [row[1] for row in _REJECTIONS])[0]
        decided["reason"] = str(reason)
        decided["decision_note"] = rng.choice(notes)
    return decided


def _handoff(
    rng: random.Random,
    planned: _Person,
    age: int,
    outcome: str,
    reps: Sequence[str],
    territory: dict[str, str],
) -> PlannedHandoff:
    ruleset = _era(age)
    signal = (
        "consent:sales_contact"
        if _signal_since_consent(planned.person) is not None
        else "stage:ready_to_talk"
    )
    assigned = territory[planned.org] if rng.random() < 0.4 else None
    return PlannedHandoff(
        email=planned.person.email,
        ruleset=ruleset,
        age=age,
        note=rng.choice(_HANDOFF_NOTES[signal]),
        assigned_to=assigned,
        outcome=outcome,
        **_decision(rng, outcome, ruleset, age, assigned, territory[planned.org], reps),
    )


def _signal_since_consent(person: DemoPerson) -> int | None:
    latest = None
    for consent in sorted(person.consents, key=lambda consent: -consent.age):
        if consent.purpose == ConsentPurpose.SALES_CONTACT:
            latest = consent
    return _seconds(latest.age) if latest is not None and latest.granted else None


def _handoffs(
    rng: random.Random,
    people: dict[str, _Person],
    reps: Sequence[str],
    territory: dict[str, str],
) -> list[PlannedHandoff]:
    """Who was handed to sales, when, under which rules, and what sales did."""
    eligible = [planned for planned in people.values() if any(planned.eligible)]
    # The queue at the anchor: the most recently qualified people, just handed off.
    waiting: dict[str, int] = {}
    by_recency = sorted(
        (p for p in eligible if p.eligible[ACTIVE] is not None),
        key=lambda p: (p.eligible[ACTIVE], p.person.email),
    )
    for slot in _pending_slots(rng, len(people)):
        for planned in by_recency:
            active_since = planned.eligible[ACTIVE]
            if planned.person.email not in waiting and (
                active_since is not None and active_since >= slot + 6 * HOUR
            ):
                waiting[planned.person.email] = slot
                break
    history: list[PlannedHandoff] = []
    for planned in eligible:
        if planned.person.email in waiting or rng.random() >= _HANDOFF_CHANCE:
            continue
        age = _natural_handoff_age(rng, planned, latest=None)
        if age is None:
            continue
        first = _handoff(rng, planned, age, _weighted(rng, _OUTCOMES), reps, territory)
        history.append(first)
        returned = first.returned_age
        recycled = first.outcome == "expired" or first.reason in _RECYCLED_REASONS
        if returned is not None and recycled and rng.random() < _RECYCLE_CHANCE:
            again = _natural_handoff_age(rng, planned, latest=returned - rng.randint(30, 120) * DAY)
            if again is not None:
                history.append(
                    _handoff(rng, planned, again, _weighted(rng, _SECOND_OUTCOMES), reps, territory)
                )
    _cover_outcomes(rng, history, people, reps, territory)
    queue = [
        _handoff(rng, people[email], age, "pending", reps, territory)
        for email, age in waiting.items()
    ]
    history.sort(key=lambda handoff: (-handoff.age, handoff.email))
    queue.sort(key=lambda handoff: (-handoff.age, handoff.email))
    return history + queue


def _natural_handoff_age(rng: random.Random, planned: _Person, *, latest: int | None) -> int | None:
    """Soon after the person became eligible under the ruleset in force (and no earlier
    than ``latest``, an age), or None when that falls within the last few days."""
    for era in (RETIRED, ACTIVE):
        since = planned.eligible[era]
        if since is None:
            continue
        if era == ACTIVE:
            since = min(since, ERA_SWITCH)
        if latest is not None:
            since = min(since, latest)
        age = since - rng.randint(2 * HOUR, 3 * DAY)
        if _era(age) == era and planned.eligible[era] is not None:
            if age < MIN_HISTORIC_HANDOFF_AGE:
                return None
            return age
    return None


def _cover_outcomes(
    rng: random.Random,
    history: list[PlannedHandoff],
    people: dict[str, _Person],
    reps: Sequence[str],
    territory: dict[str, str],
) -> None:
    """Even a small demo shows every outcome: turn some of the commonest into the missing ones."""
    seen = Counter(handoff.outcome for handoff in history)
    followed = Counter(handoff.email for handoff in history)
    for outcome, _ in _OUTCOMES:
        if seen[outcome]:
            continue
        common = seen.most_common(1)[0][0] if seen else None
        for index, handoff in enumerate(history):
            if handoff.outcome == common and followed[handoff.email] == 1 and seen[common] > 1:
                history[index] = _handoff(
                    rng, people[handoff.email], handoff.age, outcome, reps, territory
                )
                seen[common] -= 1
                seen[outcome] += 1
                break


def _sales_touch(rng: random.Random, planned: _Person, age: int) -> None:
    channel, kind = _weighted(rng, _SALES_ACTIVITY)
    _touch_add(planned, channel, kind, age)


def _handoff_touches(rng: random.Random, planned: _Person, handoff: PlannedHandoff) -> None:
    """What the rep did about a handoff: a discovery call, or attempts before giving up."""
    decided = handoff.decided_age
    if decided is None:
        return
    if handoff.outcome == "accepted":
        _touch_add(planned, "sales_call", "call", decided - rng.randint(2 * HOUR, 3 * DAY))
        for _ in range(rng.randint(0, 2)):
            _touch_add(planned, "sales_email", "other", decided - rng.randint(DAY, 20 * DAY))
    elif handoff.reason == RejectReason.UNREACHABLE:
        for _ in range(rng.randint(2, 3)):
            _touch_add(planned, "sales_call", "call", rng.randint(decided, handoff.age))
    elif rng.random() < 0.5:
        _touch_add(planned, "sales_call", "call", rng.randint(decided, handoff.age))


def _prospecting_touches(rng: random.Random, planned: _Person) -> None:
    """A rep's outreach to someone marketing never reached, which went nowhere (yet)."""
    for _ in range(rng.randint(1, 4)):
        channel, kind = rng.choices((("sales_email", "other"), ("sales_call", "call")), (3, 1))[0]
        _touch_add(planned, channel, kind, rng.randint(MINUTE, planned.age))


@dataclass
class _Account:
    """An organization's standing while deals are planned."""

    open_until: int | None = None  # the age its open deal closes at; 0 while still open
    won: bool = False


def _expected_source(
    members: Sequence[PlannedMember], age: int, handoffs: Sequence[PlannedHandoff]
) -> tuple[str, int | None]:
    """``handoff.services.sourcing_derive`` read from the plan: an accepted handoff of a
    member, made and decided before the deal, made within the sourcing window."""
    emails = {member.email for member in members}
    window = SOURCING_WINDOW_DAYS * DAY
    for index, handoff in enumerate(handoffs):
        decided = handoff.decided_age
        if handoff.email not in emails or handoff.outcome != "accepted" or decided is None:
            continue
        if decided >= age and age <= handoff.age <= age + window:
            return DealSource.MARKETING, index
    return DealSource.SALES, None


def _role(title: str, *, first: bool, has_decision_maker: bool, alone: bool) -> str:
    executive = title in _EXECUTIVES
    if first:
        return BuyingRole.DECISION_MAKER if (executive and alone) else BuyingRole.CHAMPION
    if executive and not has_decision_maker:
        return BuyingRole.DECISION_MAKER
    if title == "Procurement lead":
        return BuyingRole.OTHER
    if title in _PRACTITIONERS:
        return BuyingRole.USER
    return BuyingRole.INFLUENCER


def _members(
    rng: random.Random, lead: _Person | None, pool: Sequence[_Person]
) -> tuple[PlannedMember, ...]:
    size = _weighted(rng, _GROUP_SIZES)
    chosen = [lead] if lead is not None else []
    others = [p for p in pool if p is not lead]
    chosen += rng.sample(others, min(len(others), size - len(chosen)))
    if not chosen:
        return ()
    members: list[PlannedMember] = []
    for number, planned in enumerate(chosen):
        role = _role(
            planned.person.title,
            first=number == 0,
            has_decision_maker=any(m.role == BuyingRole.DECISION_MAKER for m in members),
            alone=len(chosen) == 1,
        )
        members.append(PlannedMember(planned.person.email, role))
    return tuple(members)


def _deals(
    rng: random.Random,
    dataset: DemoDataset,
    people: dict[str, _Person],
    handoffs: Sequence[PlannedHandoff],
    territory: dict[str, str],
) -> list[PlannedDeal]:
    """Deals opened from accepted handoffs and by reps on their own, one open deal per account."""
    by_org: dict[str, list[_Person]] = {}
    for planned in people.values():
        by_org.setdefault(planned.org, []).append(planned)
    names = {org.domain: org.name for org in dataset.organizations}
    # (age, handoff index or None, organization): every chance a deal had to open.
    chances: list[tuple[int, int | None, str]] = []
    for index, handoff in enumerate(handoffs):
        decided = handoff.decided_age
        if handoff.outcome != "accepted" or decided is None:
            continue
        if rng.random() >= _DEAL_FROM_HANDOFF_CHANCE:
            continue
        if rng.random() < _LATE_DEAL_CHANCE:
            delay = rng.randint(95, 140) * DAY
        else:
            delay = rng.randint(2, 40) * DAY + rng.randint(0, DAY)
        if decided - delay > 2 * HOUR:
            chances.append((decided - delay, index, people[handoff.email].org))
    for org in sorted(by_org):
        oldest = max(planned.age for planned in by_org[org])
        if oldest > 30 * DAY and rng.random() < _SALES_DEAL_CHANCE:
            chances.append((rng.randint(8 * DAY, oldest - 5 * DAY), None, org))
    chances.sort(key=lambda chance: (-chance[0], chance[2], chance[1] or -1))

    accounts = {org: _Account() for org in by_org}
    deals: list[PlannedDeal] = []
    for age, handoff_index, org in chances:
        account = accounts[org]
        if account.won or (account.open_until is not None and age >= account.open_until):
            continue
        around = [p for p in by_org[org] if p.age > age + HOUR]
        lead = people[handoffs[handoff_index].email] if handoff_index is not None else None
        if lead is None:
            # Reps open deals with people marketing has not just handed them.
            around = [p for p in around if not _recently_accepted(p, age, handoffs)]
            around.sort(key=lambda p: (p.journey != "sales", p.person.email))
            lead = around[0] if around else None
        if lead is None:
            continue
        members = _members(rng, lead, around)
        source = _expected_source(members, age, handoffs)
        owner = (
            handoffs[handoff_index].decided_by or territory[org]
            if handoff_index is not None
            else territory[org]
        )
        deal = _deal(
            rng,
            number=len(deals) + 1,
            name=names[org],
            org=org,
            members=members,
            owner=owner,
            age=age,
            opened_from=handoff_index,
            expected_source=source[0],
            size=len(by_org[org]),
        )
        deals.append(deal)
        _deal_touches(rng, deal, people, prospected=handoff_index is None)
        kinds = {sale.kind for sale in deal.sales}
        account.won = SaleKind.WON in kinds
        lost = next((sale.age for sale in deal.sales if sale.kind == SaleKind.LOST), None)
        account.open_until = lost - 30 * DAY if lost is not None else 0
    _cover_sales(rng, deals, people)
    return deals


def _recently_accepted(planned: _Person, age: int, handoffs: Sequence[PlannedHandoff]) -> bool:
    window = SOURCING_WINDOW_DAYS * DAY
    return any(
        handoff.email == planned.person.email
        and handoff.outcome == "accepted"
        and age <= handoff.age <= age + window
        for handoff in handoffs
    )


def _deal(
    rng: random.Random,
    *,
    number: int,
    name: str,
    org: str,
    members: tuple[PlannedMember, ...],
    owner: str,
    age: int,
    opened_from: int | None,
    expected_source: str,
    size: int,
) -> PlannedDeal:
    amount = rng.lognormvariate(math.log(24_000), 0.6) * (1 + 0.04 * size)
    amount = min(250_000, max(4_000, round(amount, -2)))
    pilot = rng.random() < _PILOT_CHANCE
    plan = "Team plan" if amount < 12_000 else "Business plan" if amount < 45_000 else "Enterprise"
    title = f"{name}: {plan}" + (", six-month pilot" if pilot else "")
    value = Decimal(amount).quantize(Decimal("0.01"))
    return PlannedDeal(
        name=title,
        organization_domain=org,
        members=members,
        amount=value,
        owner=owner,
        age=age,
        external_id=f"OPP-{number:05d}",
        opened_from=opened_from,
        expected_source=expected_source,
        sales=tuple(_sales(rng, value, age, expected_source, pilot=pilot)),
    )


def _money(amount: Decimal, factor: float) -> Decimal:
    return Decimal(round(float(amount) * factor, -2)).quantize(Decimal("0.01"))


def _sales(
    rng: random.Random, amount: Decimal, age: int, source: str, *, pilot: bool
) -> list[PlannedSale]:
    """Won or lost after a sales cycle (or still open), then the customer's life after it."""
    closes = age - rng.randint(20, 110) * DAY - rng.randint(0, DAY)
    if closes < 6 * HOUR:
        return []
    if rng.random() >= _WIN_CHANCE[source]:
        return [PlannedSale(SaleKind.LOST, None, closes)]
    sales = [PlannedSale(SaleKind.WON, amount, closes)]
    term_ends = closes - (182 if pilot else 365) * DAY
    churn_age: int | None = None
    if term_ends > HOUR:
        if rng.random() < _RENEWAL_CHANCE:
            sales.append(
                PlannedSale(SaleKind.RENEWAL, _money(amount, rng.uniform(1.0, 1.2)), term_ends)
            )
        else:
            churn_age = term_ends
    elif rng.random() < _MIDTERM_CHURN_CHANCE:
        midterm = closes - rng.randint(90, 200) * DAY
        churn_age = midterm if midterm > HOUR else None
    if rng.random() < _EXPANSION_CHANCE:
        expands = closes - rng.randint(30, 160) * DAY
        if expands > HOUR and (churn_age is None or expands > churn_age):
            sales.append(
                PlannedSale(SaleKind.EXPANSION, _money(amount, rng.uniform(0.1, 0.4)), expands)
            )
    if churn_age is not None:
        sales.append(PlannedSale(SaleKind.CHURN, amount, churn_age))
    return sorted(sales, key=lambda sale: -sale.age)


def _deal_touches(
    rng: random.Random, deal: PlannedDeal, people: dict[str, _Person], *, prospected: bool
) -> None:
    """Meetings, calls and emails with the buying group while the deal runs, outreach
    before a deal sales opened itself, and a meeting before each later sale."""
    closes = next(
        (sale.age for sale in deal.sales if sale.kind in (SaleKind.WON, SaleKind.LOST)), MINUTE
    )
    for member in deal.members:
        planned = people[member.email]
        for _ in range(rng.randint(1, 5)):
            _sales_touch(rng, planned, rng.randint(closes, deal.age))
    if prospected:
        lead = people[deal.members[0].email]
        for _ in range(rng.randint(2, 4)):
            _touch_add(lead, "sales_email", "other", deal.age + rng.randint(HOUR, 45 * DAY))
        _touch_add(lead, "sales_call", "call", deal.age + rng.randint(HOUR, 10 * DAY))
    champion = people[deal.members[0].email]
    for sale in deal.sales:
        if sale.kind in (SaleKind.EXPANSION, SaleKind.RENEWAL, SaleKind.CHURN):
            _touch_add(champion, "sales_meeting", "meeting", sale.age + rng.randint(3, 20) * DAY)


def _cover_sales(rng: random.Random, deals: list[PlannedDeal], people: dict[str, _Person]) -> None:
    """Even a small demo shows every kind of sale event where the deals allow it."""
    kinds = {sale.kind for deal in deals for sale in deal.sales}

    def replace(index: int, sales: list[PlannedSale]) -> None:
        deal = deals[index]
        deals[index] = PlannedDeal(
            **{**deal.__dict__, "sales": tuple(sorted(sales, key=lambda sale: -sale.age))}
        )
        kinds.update(sale.kind for sale in sales)

    def won_at(deal: PlannedDeal) -> int | None:
        return next((sale.age for sale in deal.sales if sale.kind == SaleKind.WON), None)

    for wanted in (SaleKind.WON, SaleKind.LOST):
        if wanted in kinds:
            continue
        for index, deal in enumerate(deals):
            if not deal.sales and deal.age > 25 * DAY:
                amount = deal.amount if wanted == SaleKind.WON else None
                replace(index, [PlannedSale(wanted, amount, deal.age - 20 * DAY)])
                break
    # Later events go on the oldest wins that have room for them.
    won = sorted(
        (index for index, deal in enumerate(deals) if won_at(deal) is not None),
        key=lambda index: -(won_at(deals[index]) or 0),
    )
    for wanted in (SaleKind.EXPANSION, SaleKind.RENEWAL, SaleKind.CHURN):
        if wanted in kinds:
            continue
        for index in won:
            deal = deals[index]
            held = {sale.kind for sale in deal.sales}
            started = won_at(deal) or 0
            if SaleKind.CHURN in held or started < 20 * DAY:
                continue
            if wanted == SaleKind.RENEWAL and SaleKind.RENEWAL in held:
                continue
            age = started // 2 if wanted != SaleKind.CHURN else max(HOUR, started // 4)
            later = any(sale.age <= age for sale in deal.sales if sale.kind != SaleKind.WON)
            if later and wanted == SaleKind.CHURN:
                continue  # churn comes last
            factor = {SaleKind.EXPANSION: 0.25, SaleKind.RENEWAL: 1.0, SaleKind.CHURN: 1.0}
            amount = _money(deal.amount, factor[wanted])
            replace(index, [*deal.sales, PlannedSale(wanted, amount, age)])
            champion = people[deal.members[0].email]
            _touch_add(champion, "sales_meeting", "meeting", age + rng.randint(3, 10) * DAY)
            break


def _overrides(deals: Sequence[PlannedDeal], people: dict[str, _Person]) -> list[PlannedOverride]:
    """A manager overrides two deals' derived source, with a reason each."""
    overrides: list[PlannedOverride] = []

    def met_at_event(deal: PlannedDeal) -> bool:
        return any(
            touch.channel == "event" and touch.age > deal.age
            for member in deal.members
            for touch in people[member.email].touches
        )

    to_marketing = [i for i, d in enumerate(deals) if d.expected_source == DealSource.SALES]
    to_marketing.sort(key=lambda index: (not met_at_event(deals[index]), index))
    if to_marketing:
        overrides.append(
            PlannedOverride(
                to_marketing[0], DealSource.MARKETING, _OVERRIDE_REASONS[DealSource.MARKETING]
            )
        )
    to_sales = [i for i, d in enumerate(deals) if d.expected_source == DealSource.MARKETING]
    if len(to_sales) > 1:
        overrides.append(
            PlannedOverride(to_sales[-1], DealSource.SALES, _OVERRIDE_REASONS[DealSource.SALES])
        )
    return overrides


# --- the writing half: through the services, anchored at the people's anchor --------


@dataclass(frozen=True)
class DemoTeam:
    """The demo users who do the work: marketing hands off, reps sell, a manager rules."""

    marketer: User
    manager: User
    reps: tuple[User, ...]
    integration: User | None = None  # the API client that syncs touches, if any


@dataclass
class DemoPipelineSummary:
    campaigns: int = 0
    campaign_cost: Decimal = Decimal("0")
    touches: int = 0
    touches_by_team: dict[str, int] = field(default_factory=dict)
    people_touched: int = 0
    people_sales_only: int = 0
    rulesets: dict[str, int] = field(default_factory=dict)  # status -> version
    qualified: int = 0
    qualifications: int = 0
    handoffs: dict[str, int] = field(default_factory=dict)  # status -> count
    handoffs_overdue: int = 0
    deals: dict[str, int] = field(default_factory=dict)  # derived source -> count
    deals_open: int = 0
    overrides: int = 0
    sales: dict[str, int] = field(default_factory=dict)  # kind -> count
    revenue: Decimal = Decimal("0")
    targets: tuple[str, ...] = ()
    seconds: float = 0.0
    # Why nothing was written, when nothing was.
    skipped: str = ""


def demo_pipeline_existing() -> str:
    """Why the demo pipeline should not be written here, or "" when it may be."""
    if Ruleset.objects.exists():
        return "rulesets exist"
    if Handoff.objects.exists() or Deal.objects.exists():
        return "handoffs or deals exist"
    names = [row[0] for row in _CAMPAIGNS]
    if Campaign.objects.filter(name__in=names).exists():
        return "the demo campaigns exist"
    return ""


def demo_pipeline_seed(
    *, count: int, seed: int, team: DemoTeam, now: datetime, actor: Actor
) -> DemoPipelineSummary:
    """Write ``demo_pipeline`` for ``demo_people(count, seed)`` through the services.

    ``now`` is the anchor the demo people were written at (so the plan's
    times meet theirs). Effects: campaigns, touches, two rulesets (the first
    retired), qualifications, handoffs and their decisions, deals with buying
    groups, sale events, source overrides and contribution targets, each with
    its ledger entries, back-dated before ``now`` where the services allow.
    Nothing is written when rulesets, handoffs, deals or the demo campaigns
    exist already. All or nothing, in one transaction.
    """
    started = time.monotonic()
    reason = demo_pipeline_existing()
    if reason:
        return DemoPipelineSummary(skipped=reason)
    dataset = demo_people(count, seed)
    plan = demo_pipeline(dataset, seed, [rep.get_username() for rep in team.reps])
    if not plan.touches:
        return DemoPipelineSummary(skipped="no demo people to work with")
    with transaction.atomic():
        _Writer(plan, team, now, actor, seed).write()
    summary = _summary()
    summary.seconds = time.monotonic() - started
    return summary


class _Writer:
    def __init__(
        self, plan: DemoPipeline, team: DemoTeam, anchor: datetime, actor: Actor, seed: int
    ) -> None:
        self.plan = plan
        self.team = team
        self.anchor = anchor
        self.seed = seed
        self.marketer = Actor.of(team.marketer)
        self.manager = Actor.of(team.manager)
        self.syncer = Actor.of(team.integration) if team.integration is not None else actor
        self.reps = {rep.get_username(): rep for rep in team.reps}
        emails = {touch.email for touch in plan.touches}
        emails |= {handoff.email for handoff in plan.handoffs}
        emails |= {member.email for deal in plan.deals for member in deal.members}
        self.contacts = {
            contact.email_key: contact
            for contact in Contact.objects.filter(email_key__in=[e.lower() for e in emails])
        }
        domains = {deal.organization_domain for deal in plan.deals}
        self.organizations = {
            organization.domain: organization
            for organization in Organization.objects.filter(domain__in=domains)
        }

    def at(self, age: int) -> datetime:
        return self.anchor - timedelta(seconds=age)

    def contact(self, email: str) -> Contact:
        return self.contacts[email.lower()]

    def write(self) -> None:
        campaign_ids = self.campaigns_write()
        self.touches_write(campaign_ids)
        self.handoffs_write()
        deals = self.deals_write()
        self.sales_write(deals)
        for override in self.plan.overrides:
            deal_source_override(
                deal=deals[override.deal],
                source=override.source,
                reason=override.reason,
                actor=self.manager,
            )
        for period, share in zip(
            _quarters(self.anchor, len(self.plan.target_shares)),
            self.plan.target_shares,
            strict=True,
        ):
            target_set(period=period, share=share, actor=self.manager)

    def campaigns_write(self) -> list[int]:
        channels = {channel.key: channel for channel in Channel.objects.all()}
        ids = []
        for planned in self.plan.campaigns:
            campaign = campaign_create(
                name=planned.name,
                channel=channels[planned.channel],
                utm_source=planned.utm_source,
                utm_medium=planned.utm_medium,
                utm_campaign=planned.utm_campaign,
                cost=planned.cost,
                actor=self.marketer,
                occurred_at=self.at(planned.age),
            )
            ids.append(campaign.pk)
        return ids

    def touches_write(self, campaign_ids: Sequence[int]) -> None:
        """Through the set-based path the integrations use, a thousand at a time."""
        events = []
        for number, touch in enumerate(self.plan.touches, start=1):
            sales = touch.channel.startswith("sales_")
            event: dict[str, Any] = {
                "type": "touch",
                "source_system": TOUCH_SOURCE_CRM if sales else TOUCH_SOURCE_MARKETING,
                "external_id": f"demo-{self.seed}-{number:06d}",
                "occurred_at": self.at(touch.age).isoformat(),
                "contact": {"email": touch.email},
                "channel": touch.channel,
                "kind": touch.kind,
            }
            if touch.campaign is not None:
                event["campaign"] = campaign_ids[touch.campaign]
            events.append(event)
        for start in range(0, len(events), MAX_EVENTS):
            answer = events_ingest(events=events[start : start + MAX_EVENTS], actor=self.syncer)
            if answer.body["created"] != len(events[start : start + MAX_EVENTS]):
                refused = [r for r in answer.body["results"] if r["status"] != "created"]
                raise RuntimeError(f"Demo touches not stored: {refused[:3]}")

    def ruleset_start(self, index: int) -> None:
        spec = RULESETS[index]
        ruleset = ruleset_create(
            name=spec.name,
            points=spec.points,
            mql_threshold=spec.mql_threshold,
            sla_hours=spec.sla_hours,
            sourcing_window_days=spec.sourcing_window_days,
            actor=self.manager,
        )
        ruleset_activate(ruleset=ruleset, actor=self.manager)
        # The activation queues this for after the commit; the demo's handoffs
        # need the scores now (and a second run finds nothing to change).
        contacts_rescore_all(ruleset_id=ruleset.pk)

    def handoffs_write(self) -> None:
        """In time order: the first rules, their handoffs, the revised rules, theirs, the SLA's
        expiries, and last the queue as it stands at the anchor."""
        era = RETIRED
        self.ruleset_start(RETIRED)
        returned_by_lapse: set[str] = set()
        queue_started = False
        for planned in self.plan.handoffs:
            if planned.ruleset == ACTIVE and era == RETIRED:
                self.ruleset_start(ACTIVE)
                era = ACTIVE
            if planned.outcome == "pending" and not queue_started:
                handoffs_expire_due(now=self.anchor)
                queue_started = True
            elif planned.email in returned_by_lapse:
                handoffs_expire_due(now=self.at(planned.age))
            handoff = handoff_create(
                contact=self.contact(planned.email),
                actor=self.marketer,
                note=planned.note,
                assigned_to=self.reps[planned.assigned_to] if planned.assigned_to else None,
                occurred_at=self.at(planned.age),
            )
            decided_at = self.at(planned.decided_age) if planned.decided_age is not None else None
            rep = self.reps[planned.decided_by] if planned.decided_by else None
            if planned.outcome == "accepted" and rep is not None:
                handoff_accept(handoff=handoff, user=rep, occurred_at=decided_at)
            elif planned.outcome == "rejected" and rep is not None:
                handoff_reject(
                    handoff=handoff,
                    user=rep,
                    reason=planned.reason,
                    note=planned.decision_note,
                    occurred_at=decided_at,
                )
            elif planned.outcome == "expired":
                returned_by_lapse.add(planned.email)
        if era == RETIRED:
            self.ruleset_start(ACTIVE)
        if not queue_started:
            handoffs_expire_due(now=self.anchor)

    def deals_write(self) -> list[Deal]:
        deals = []
        for planned in self.plan.deals:
            owner = self.reps[planned.owner]
            deal, _ = deal_create(
                name=planned.name,
                organization=self.organizations[planned.organization_domain],
                members=[
                    Member(self.contact(member.email), member.role) for member in planned.members
                ],
                amount=planned.amount,
                actor=Actor.of(owner),
                owner=owner,
                external_id=planned.external_id,
                source_system=DEAL_SOURCE_SYSTEM,
                occurred_at=self.at(planned.age),
            )
            deals.append(deal)
        return deals

    def sales_write(self, deals: Sequence[Deal]) -> None:
        events = sorted(
            (
                (sale.age, index, number, sale)
                for index, planned in enumerate(self.plan.deals)
                for number, sale in enumerate(planned.sales, start=1)
            ),
            key=lambda event: (-event[0], event[1], event[2]),
        )
        for age, index, number, sale in events:
            planned = self.plan.deals[index]
            sale_event_record(
                deal=deals[index],
                kind=sale.kind,
                amount=sale.amount,
                actor=Actor.of(self.reps[planned.owner]),
                occurred_at=self.at(age),
                external_id=f"{planned.external_id}-{number}",
                source_system=DEAL_SOURCE_SYSTEM,
            )


def _quarters(anchor: datetime, count: int) -> list[str]:
    """The ``count`` quarters up to and including the anchor's, oldest first."""
    year, quarter = anchor.year, (anchor.month - 1) // 3 + 1
    periods = []
    for _ in range(count):
        periods.append(f"{year}-Q{quarter}")
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    return periods[::-1]


def _summary() -> DemoPipelineSummary:
    """What the data set now holds (the demo is the only writer of these tables here)."""
    summary = DemoPipelineSummary()
    campaigns = Campaign.objects.filter(name__in=[row[0] for row in _CAMPAIGNS])
    summary.campaigns = campaigns.count()
    summary.campaign_cost = campaigns.aggregate(total=Sum("cost"))["total"] or Decimal("0")
    touches = Touch.objects.filter(source_system__in=(TOUCH_SOURCE_MARKETING, TOUCH_SOURCE_CRM))
    summary.touches = touches.count()
    summary.touches_by_team = dict(
        Counter(touches.values_list("channel__team", flat=True).order_by())
    )
    teams_of: dict[int, set[str]] = {}
    for contact_id, team in touches.values_list("contact_id", "channel__team").distinct():
        teams_of.setdefault(contact_id, set()).add(team)
    summary.people_touched = len(teams_of)
    summary.people_sales_only = sum(1 for teams in teams_of.values() if teams == {Team.SALES})
    summary.rulesets = {
        status: version for version, status in Ruleset.objects.values_list("version", "status")
    }
    summary.qualified = Contact.objects.filter(qualified=True).count()
    summary.qualifications = Qualification.objects.count()
    summary.handoffs = dict(Counter(Handoff.objects.values_list("status", flat=True)))
    summary.handoffs_overdue = Handoff.objects.filter(
        status=HandoffStatus.PENDING, due_at__lte=timezone.now()
    ).count()
    summary.deals = dict(Counter(Deal.objects.values_list("derived_source", flat=True)))
    summary.deals_open = Deal.objects.filter(state=DealState.OPEN).count()
    summary.overrides = Deal.objects.exclude(source_override="").count()
    summary.sales = dict(Counter(SaleEvent.objects.values_list("kind", flat=True)))
    summary.revenue = SaleEvent.objects.filter(
        kind__in=(SaleKind.WON, SaleKind.EXPANSION, SaleKind.RENEWAL)
    ).aggregate(total=Sum("amount"))["total"] or Decimal("0")
    summary.targets = tuple(
        ContributionTarget.objects.order_by("period").values_list("period", flat=True)
    )
    return summary
