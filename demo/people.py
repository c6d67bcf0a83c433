"""The demo population: B2B organizations and people, their consents and disclosures.

Two halves. ``demo_people`` is pure: from ``count`` and ``seed`` alone it
returns plain data, every time in seconds *before* an anchor, so the same seed
always gives the same people and values. ``demo_contacts_seed`` writes that
data through ``contacts.services`` (so every row is on the ledger), anchored
at ``timezone.now()``.

Demo domains use the reserved ``.example`` top-level domain (RFC 2606), so a
demo address can never reach a real mailbox.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from contacts.models import (
    JOURNEY_STAGE_KEY,
    Audience,
    ConsentPurpose,
    Contact,
    Disclosure,
    DisclosurePurpose,
    DisclosureSource,
    JourneyStage,
    Organization,
)
from contacts.services import (
    consent_record,
    contact_create,
    disclosure_record,
    disclosure_withdraw,
    organization_get_or_create,
)
from leadrecord.ledger import Actor

DEMO_TLD = "example"
MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# Everything happened within the last half year, the youngest person a day ago.
WINDOW_SECONDS = 180 * DAY
YOUNGEST_CONTACT_SECONDS = DAY
# About eight people per organization, as in a typical mid-market buying group.
CONTACTS_PER_ORGANIZATION = 8
# The privacy notice changed 90 days before the anchor: consents before it cite
# the old version, later ones the new.
NOTICE_OLD, NOTICE_NEW = "2026-01", "2026-06"
NOTICE_CHANGE_SECONDS = 90 * DAY

_COMPANY_STEMS = (
    "Northwind", "Bluepeak", "Ironbark", "Cobalt", "Harborline", "Juniper", "Meridian",
    "Quarrystone", "Silverline", "Tidewater", "Copperleaf", "Lumen", "Granite", "Asterion",
    "Beacon", "Crestview", "Driftwood", "Evergreen", "Foxglove", "Halcyon", "Kestrel",
    "Larkspur", "Maplewood", "Nimbus", "Orchard", "Pinecrest", "Redwood", "Sable", "Trellis",
    "Upland", "Vantage", "Willowby", "Alder", "Brightwater", "Cinder", "Dovetail", "Emberly",
    "Fairhaven", "Glasswing", "Highmark", "Inkwell", "Jetstream", "Keystone", "Lodestar",
    "Mosaic", "Northstar", "Oakridge", "Parallax", "Quillon", "Riverbend", "Saltmarsh",
    "Thornbury", "Umbra", "Verity", "Westgate", "Yarrow", "Zephyr", "Bramble", "Calder",
    "Fenwick",
)  # fmt: skip
_COMPANY_KINDS = (
    "Logistics", "Analytics", "Health", "Manufacturing", "Software", "Energy", "Foods",
    "Robotics", "Insurance", "Retail", "Labs", "Systems", "Freight", "Financial", "Biotech",
    "Media", "Security", "Engineering",
)  # fmt: skip
# How each organization spells its addresses, and how often.
_EMAIL_FORMATS = (("{first}.{last}", 60), ("{initial}{last}", 25), ("{first}_{last}", 15))
_FIRST_NAMES = (
    "Ada", "Aisha", "Alex", "Amara", "Ana", "Andrea", "Ben", "Carlos", "Chen", "Chloé",
    "Dana", "Daniel", "Deepa", "Elena", "Emma", "Farid", "Fatima", "Grace", "Hannah", "Hiro",
    "Ines", "Ivan", "Jamal", "Jana", "José", "Julia", "Kai", "Kenji", "Laura", "Leo", "Lina",
    "Lucas", "Maya", "Mei", "Mohammed", "Nadia", "Nina", "Noah", "Olivia", "Omar", "Priya",
    "Rafael", "Renée", "Ravi", "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Tom", "Valentina",
    "Wei", "Yusuf", "Zoë", "Niamh", "Kwame", "Ingrid", "Mateo", "Aiko", "Lars",
)  # fmt: skip
_LAST_NAMES = (
    "Abbott", "Adeyemi", "Alvarez", "Andersson", "Bauer", "Becker", "Brennan", "Castro",
    "Chen", "Costa", "Dubois", "Eriksen", "Fischer", "Fontaine", "García", "Gupta", "Hansen",
    "Hoffmann", "Ibrahim", "Ito", "Jensen", "Kaur", "Kim", "Kowalski", "Larsen", "Lopez",
    "Mbeki", "Meyer", "Moreau", "Müller", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen",
    "Patel", "Perez", "Petrov", "Quinn", "Rahman", "Rossi", "Santos", "Schmidt", "Silva",
    "Singh", "Sørensen", "Tanaka", "Turner", "Usman", "Varga", "Wagner", "Walsh", "Weber",
    "Wong", "Yamamoto", "Yilmaz", "Zhang", "Zimmermann", "O'Brien", "Haddad",
)  # fmt: skip
# Titles of a B2B buying group, weighted: many practitioners, fewer executives.
_TITLES = (
    ("VP Marketing", 6), ("Marketing Operations Manager", 8), ("Demand Generation Lead", 6),
    ("Head of IT", 6), ("IT Manager", 6), ("CFO", 3), ("Finance Director", 4),
    ("Procurement lead", 6), ("Engineer", 10), ("Senior Engineer", 7), ("CTO", 3),
    ("Head of Sales", 4), ("Sales Operations Analyst", 6), ("COO", 2),
    ("Data Analyst", 6), ("Product Manager", 7), ("Head of Operations", 5), ("CEO", 2),
)  # fmt: skip

# How a person first arrived: the consent source of their first grants, and how
# likely that route is to include a sales-contact consent.
_ARRIVALS = (
    ("pricing-page form", 20, 0.5),
    ("webinar registration", 20, 0.2),
    ("whitepaper download", 18, 0.15),
    ("newsletter signup", 15, 0.05),
    ("trade-show badge scan", 10, 0.3),
    ("contact-sales form", 10, 0.95),
    ("free-trial signup", 7, 0.4),
)
_ANALYTICS_SOURCE = "cookie banner"
_WITHDRAWAL_SOURCES = {
    ConsentPurpose.ANALYTICS: "cookie settings",
    ConsentPurpose.MARKETING_EMAIL: "unsubscribe link",
    ConsentPurpose.SALES_CONTACT: "preference center",
}
_RECONFIRM_SOURCE = "preference center"

# What people tell us: key -> (values, audience weights (marketing, sales, all), purposes).
_DISCLOSURE_KEYS: dict[str, tuple[tuple[str, ...], tuple[int, int, int], tuple[str, ...]]] = {
    "budget": (
        ("under 10k", "10-25k", "25-50k", "50-100k", "100k+", "not decided yet"),
        (1, 6, 3),
        (DisclosurePurpose.QUALIFICATION, DisclosurePurpose.SALES_CONTACT),
    ),
    "timeline": (
        ("this quarter", "next quarter", "within 6 months", "next fiscal year", "just researching"),
        (2, 5, 3),
        (DisclosurePurpose.QUALIFICATION, DisclosurePurpose.SALES_CONTACT),
    ),
    "team_size": (
        ("1-5", "6-20", "21-50", "51-200", "200+"),
        (3, 2, 5),
        (DisclosurePurpose.QUALIFICATION, DisclosurePurpose.PERSONALIZATION),
    ),
    "use_case": (
        (
            "lead routing",
            "attribution reporting",
            "consent management",
            "pipeline forecasting",
            "marketing-sales handoff",
            "CRM clean-up",
        ),
        (3, 2, 5),
        (DisclosurePurpose.PERSONALIZATION, DisclosurePurpose.QUALIFICATION),
    ),
    "pain_point": (
        (
            "leads go cold before sales calls them",
            "no agreed definition of a qualified lead",
            "cannot show what marketing contributed",
            "duplicate contacts across tools",
            "manual spreadsheet reporting every month",
            "consent records scattered across systems",
        ),
        (5, 2, 3),
        (DisclosurePurpose.PERSONALIZATION, DisclosurePurpose.MARKETING_EMAIL),
    ),
    "current_tool": (
        ("spreadsheets", "HubSpot", "Salesforce", "Pipedrive", "an in-house CRM", "nothing yet"),
        (4, 3, 3),
        (DisclosurePurpose.ANALYTICS, DisclosurePurpose.PERSONALIZATION),
    ),
}
# Budgets and timelines go stale; some are shared for a limited time.
_PERISHABLE_KEYS = frozenset({"budget", "timeline"})
_AUDIENCES = (Audience.MARKETING, Audience.SALES, Audience.ALL)
_SOURCE_WEIGHTS = (
    (DisclosureSource.FORM, 35),
    (DisclosureSource.CONVERSATION, 25),
    (DisclosureSource.SELF, 20),
    (DisclosureSource.IMPORT, 10),
    (DisclosureSource.API, 10),
)
_STAGES = (JourneyStage.LEARNING, JourneyStage.COMPARING, JourneyStage.READY_TO_TALK)
# How many facts (besides the stage) a person shares: weights for 0, 1, 2, 3, 4.
_FACT_COUNT_WEIGHTS = (10, 25, 30, 20, 15)


# --- the pure half: plain data from (count, seed) ----------------------------


@dataclass(frozen=True)
class DemoOrganization:
    name: str
    domain: str
    age: timedelta  # how long before the anchor it was created


@dataclass(frozen=True)
class DemoConsent:
    purpose: str
    granted: bool
    source: str
    notice_version: str
    age: timedelta


@dataclass(frozen=True)
class DemoDisclosure:
    key: str
    value: str
    audience: str
    purpose: str
    source: str
    age: timedelta
    # From the anchor: negative means it had already expired by then.
    expires_in: timedelta | None = None
    withdrawn_age: timedelta | None = None


@dataclass(frozen=True)
class DemoPerson:
    first_name: str
    last_name: str
    title: str
    email: str
    organization_domain: str
    age: timedelta
    consents: tuple[DemoConsent, ...]
    disclosures: tuple[DemoDisclosure, ...]


@dataclass(frozen=True)
class DemoDataset:
    organizations: tuple[DemoOrganization, ...]
    people: tuple[DemoPerson, ...]


def demo_organization_count(contacts: int) -> int:
    return max(1, round(contacts / CONTACTS_PER_ORGANIZATION)) if contacts > 0 else 0


def demo_people(count: int, seed: int) -> DemoDataset:
    """The demo organizations and people for ``count`` contacts, a function of the seed alone.

    The first few people are steered so that even a small set shows every
    audience, disclosure source and journey stage, a withdrawn consent and a
    withdrawn, an expired and a still-valid expiring disclosure.
    """
    rng = random.Random(seed)  # noqa: S311 -- reproducible demo data, not secrets
    organizations = _organizations(rng, demo_organization_count(count))
    # One address convention per company.
    email_formats = {org.domain: _weighted(rng, _EMAIL_FORMATS) for org in organizations}
    members = _assign_members(rng, count, len(organizations))
    used_emails: set[str] = set()
    people = []
    for index, org_index in enumerate(members):
        organization = organizations[org_index]
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        email = _email(first, last, organization.domain, email_formats[organization.domain])
        email = _unique_email(email, used_emails)
        age = rng.randint(YOUNGEST_CONTACT_SECONDS, WINDOW_SECONDS)
        arrival, _, sales_chance = _weighted_row(rng, _ARRIVALS)
        people.append(
            DemoPerson(
                first_name=first,
                last_name=last,
                title=_weighted(rng, _TITLES),
                email=email,
                organization_domain=organization.domain,
                age=timedelta(seconds=age),
                consents=tuple(_consents(rng, index, age, arrival, sales_chance)),
                disclosures=tuple(_disclosures(rng, index, age)),
            )
        )
    # An organization appears a little before its first person.
    oldest: dict[str, timedelta] = {}
    for person in people:
        oldest[person.organization_domain] = max(
            person.age, oldest.get(person.organization_domain, timedelta(0))
        )
    dated = []
    for org in organizations:
        lead = timedelta(seconds=rng.randint(MINUTE, 3 * DAY))
        dated.append(
            DemoOrganization(org.name, org.domain, oldest.get(org.domain, timedelta(0)) + lead)
        )
    return DemoDataset(organizations=tuple(dated), people=tuple(people))


def _weighted(rng: random.Random, options: Sequence[tuple[str, int]]) -> str:
    return rng.choices([option for option, _ in options], [weight for _, weight in options])[0]


def _weighted_row(
    rng: random.Random, rows: Sequence[tuple[str, int, float]]
) -> tuple[str, int, float]:
    return rng.choices(list(rows), [row[1] for row in rows])[0]


def _organizations(rng: random.Random, count: int) -> list[DemoOrganization]:
    stems = list(_COMPANY_STEMS)
    rng.shuffle(stems)
    organizations: list[DemoOrganization] = []
    domains: set[str] = set()
    for index in range(count):
        stem = stems[index % len(stems)]
        name = f"{stem} {rng.choice(_COMPANY_KINDS)}"
        domain = f"{_ascii_slug(name)}.{DEMO_TLD}"
        number = 2
        while domain in domains:  # only once the stems run out (over 480 contacts)
            name = f"{stem} {rng.choice(_COMPANY_KINDS)} {number}"
            domain = f"{_ascii_slug(name)}.{DEMO_TLD}"
            number += 1
        domains.add(domain)
        organizations.append(DemoOrganization(name=name, domain=domain, age=timedelta(0)))
    return organizations


def _assign_members(rng: random.Random, count: int, organizations: int) -> list[int]:
    """Which organization each person belongs to: every one has someone, some have many."""
    if organizations == 0:
        return []
    # A few large accounts and a long tail, as in real pipelines.
    sizes = [rng.paretovariate(1.5) for _ in range(organizations)]
    members = list(range(min(count, organizations)))
    members += rng.choices(range(organizations), sizes, k=count - len(members))
    rng.shuffle(members)
    return members


# Letters that Unicode does not decompose into a base letter and an accent.
_UNDECOMPOSABLE = str.maketrans({"ø": "o", "æ": "ae", "ß": "ss", "ł": "l", "đ": "d"})


def _ascii(text: str) -> str:
    """For addresses: lower-case ASCII letters and digits only ("Sørensen" -> "sorensen")."""
    folded = unicodedata.normalize("NFKD", text.lower().translate(_UNDECOMPOSABLE))
    folded = folded.encode("ascii", "ignore").decode("ascii")
    return "".join(char for char in folded if char.isalnum())


def _ascii_slug(text: str) -> str:
    return "-".join(_ascii(word) for word in text.split())


def _email(first: str, last: str, domain: str, email_format: str) -> str:
    local = email_format.format(first=_ascii(first), last=_ascii(last), initial=_ascii(first)[0])
    return f"{local}@{domain}"


def _unique_email(email: str, used: set[str]) -> str:
    local, domain = email.split("@")
    candidate, number = email, 2
    while candidate in used:
        candidate = f"{local}{number}@{domain}"
        number += 1
    used.add(candidate)
    return candidate


def _later(rng: random.Random, age: int) -> int:
    """A moment after ``age`` seconds before the anchor and not after the anchor."""
    return rng.randint(MINUTE, max(MINUTE, age - MINUTE))


def _notice(age: int) -> str:
    return NOTICE_OLD if age > NOTICE_CHANGE_SECONDS else NOTICE_NEW


def _consents(
    rng: random.Random, index: int, age: int, arrival: str, sales_chance: float
) -> list[DemoConsent]:
    """Consents given on arrival, with the history that followed (withdrawals, re-confirmations)."""
    consents = []
    at = age - rng.randint(0, 2 * MINUTE)  # the form's submission, moments after arriving
    plans = (
        (ConsentPurpose.ANALYTICS, 0.85, 0.9, _ANALYTICS_SOURCE, 0.08),
        (ConsentPurpose.MARKETING_EMAIL, 0.75, 0.85, arrival, 0.15),
        (ConsentPurpose.SALES_CONTACT, sales_chance, 0.9, arrival, 0.08),
    )
    for purpose, recorded_chance, granted_chance, source, withdraw_chance in plans:
        steered = index == 0 and purpose == ConsentPurpose.MARKETING_EMAIL
        if not steered and rng.random() >= recorded_chance:
            continue
        granted = steered or rng.random() < granted_chance
        consents.append(DemoConsent(purpose, granted, source, _notice(at), timedelta(seconds=at)))
        if not granted:
            continue
        if steered or rng.random() < withdraw_chance:
            withdrawn = _later(rng, at)
            consents.append(
                DemoConsent(
                    purpose,
                    False,
                    _WITHDRAWAL_SOURCES[purpose],
                    _notice(withdrawn),
                    timedelta(seconds=withdrawn),
                )
            )
        elif _notice(at) == NOTICE_OLD and rng.random() < 0.25:
            # Asked again under the new notice, and said yes again.
            again = _later(rng, min(at, NOTICE_CHANGE_SECONDS))
            consents.append(
                DemoConsent(purpose, True, _RECONFIRM_SOURCE, NOTICE_NEW, timedelta(seconds=again))
            )
    return consents


def _disclosures(rng: random.Random, index: int, age: int) -> list[DemoDisclosure]:
    disclosures = _stage_disclosures(rng, index, age)
    facts = rng.choices(range(len(_FACT_COUNT_WEIGHTS)), _FACT_COUNT_WEIGHTS)[0]
    if index < len(DisclosureSource.values):
        facts = max(facts, 1)
    for number, key in enumerate(rng.sample(sorted(_DISCLOSURE_KEYS), facts)):
        values, audience_weights, purposes = _DISCLOSURE_KEYS[key]
        audience = rng.choices(_AUDIENCES, audience_weights)[0]
        source = _weighted(rng, _SOURCE_WEIGHTS)
        if number == 0 and index < len(DisclosureSource.values):
            source = DisclosureSource.values[index]  # the first five people show every source
        if number == 0 and index < len(_AUDIENCES):
            audience = _AUDIENCES[index]
        at = _later(rng, age)
        expires_in = None
        perishable = key in _PERISHABLE_KEYS and rng.random() < 0.3
        if perishable or (number == 0 and index in (1, 2)):
            # Shared for 1 to 90 days: by now some have lapsed, some not yet.
            lasts = rng.randint(DAY, 90 * DAY)
            if number == 0 and index == 1:
                lasts = max(MINUTE, at // 2)  # steered: already expired
            if number == 0 and index == 2:
                lasts = at + rng.randint(DAY, 30 * DAY)  # steered: still valid
            expires_in = timedelta(seconds=lasts - at)
        withdrawn_age = None
        if (number == 0 and index == 3) or (at > 2 * MINUTE and rng.random() < 0.06):
            withdrawn_age = timedelta(seconds=_later(rng, at))
        disclosures.append(
            DemoDisclosure(
                key=key,
                value=rng.choice(values),
                audience=audience,
                purpose=rng.choice(purposes),
                source=source,
                age=timedelta(seconds=at),
                expires_in=expires_in,
                withdrawn_age=withdrawn_age,
            )
        )
    return disclosures


def _stage_disclosures(rng: random.Random, index: int, age: int) -> list[DemoDisclosure]:
    """The journey stages a person declared, in order; some move on over time."""
    if index >= len(_STAGES) and rng.random() >= 0.8:
        return []
    # Steered for the first three people so every stage appears.
    stage = index if index < len(_STAGES) else rng.choices(range(len(_STAGES)), (45, 35, 20))[0]
    at = _later(rng, age)
    stages = []
    while True:
        purpose = (
            DisclosurePurpose.SALES_CONTACT
            if _STAGES[stage] == JourneyStage.READY_TO_TALK
            else DisclosurePurpose.QUALIFICATION
        )
        stages.append(
            DemoDisclosure(
                key=JOURNEY_STAGE_KEY,
                value=_STAGES[stage],
                audience=rng.choices(_AUDIENCES, (15, 15, 70))[0],
                purpose=purpose,
                source=rng.choices(
                    (DisclosureSource.SELF, DisclosureSource.FORM, DisclosureSource.CONVERSATION),
                    (60, 30, 10),
                )[0],
                age=timedelta(seconds=at),
            )
        )
        if stage + 1 >= len(_STAGES) or at <= 2 * MINUTE or rng.random() >= 0.35:
            return stages
        stage += 1
        at = _later(rng, at)


# --- the writing half: through the services, anchored at now -----------------


@dataclass
class DemoSummary:
    organizations: int = 0
    contacts: int = 0
    consents: int = 0
    consents_not_granted: int = 0  # refusals and later withdrawals
    disclosures: int = 0
    disclosures_withdrawn: int = 0
    # Demo contacts found already there; when any are, nothing is created.
    existing: int = 0

    @property
    def skipped(self) -> bool:
        return self.existing > 0


def demo_contacts_existing(dataset: DemoDataset) -> int:
    """Contacts (living, merged or erased) in the data set's organizations."""
    domains = [organization.domain for organization in dataset.organizations]
    return Contact.objects.filter(organization__domain__in=domains).count()


def demo_contacts_seed(
    *, count: int, seed: int, actor: Actor, now: datetime | None = None
) -> DemoSummary:
    """Write ``demo_people(count, seed)`` through the services, unless it is already there.

    Effects: organizations, contacts, consents, disclosures and withdrawals,
    each with its ledger entry, back-dated before ``now``. If any contact of
    the demo organizations exists (even erased), nothing is written, so a
    second run changes nothing and an erased demo person is never recreated.
    All or nothing, in one transaction, so that check is exact; the ledger's
    lock is held for the few seconds it takes, which a demo can afford.
    """
    dataset = demo_people(count, seed)
    anchor = now or timezone.now()
    existing = demo_contacts_existing(dataset)
    if existing:
        return DemoSummary(existing=existing)
    summary = DemoSummary()
    with transaction.atomic():
        organizations: dict[str, Organization] = {}
        for demo_organization in dataset.organizations:
            organization, created = organization_get_or_create(
                name=demo_organization.name,
                domain=demo_organization.domain,
                actor=actor,
                occurred_at=anchor - demo_organization.age,
            )
            organizations[demo_organization.domain] = organization
            summary.organizations += created
        for person in dataset.people:
            _person_write(
                person,
                organization=organizations[person.organization_domain],
                anchor=anchor,
                actor=actor,
                summary=summary,
            )
    return summary


def _person_write(
    person: DemoPerson,
    *,
    organization: Organization,
    anchor: datetime,
    actor: Actor,
    summary: DemoSummary,
) -> None:
    contact, created = contact_create(
        email=person.email,
        first_name=person.first_name,
        last_name=person.last_name,
        title=person.title,
        organization=organization,
        actor=actor,
        occurred_at=anchor - person.age,
    )
    if not created:
        summary.existing += 1
        return
    summary.contacts += 1
    # Everything the person did, oldest first: (age, order, what, which).
    events: list[tuple[timedelta, int, str, int]] = [
        (consent.age, 0, "consent", number) for number, consent in enumerate(person.consents)
    ]
    for number, disclosure in enumerate(person.disclosures):
        events.append((disclosure.age, 1, "disclose", number))
        if disclosure.withdrawn_age is not None:
            events.append((disclosure.withdrawn_age, 2, "withdraw", number))
    events.sort(key=lambda event: (-event[0], event[1], event[3]))
    recorded: dict[int, Disclosure] = {}
    for age, _, what, number in events:
        occurred_at = anchor - age
        if what == "consent":
            consent = person.consents[number]
            consent_record(
                contact=contact,
                purpose=consent.purpose,
                granted=consent.granted,
                source=consent.source,
                notice_version=consent.notice_version,
                actor=actor,
                occurred_at=occurred_at,
            )
            summary.consents += 1
            summary.consents_not_granted += not consent.granted
        elif what == "disclose":
            disclosure = person.disclosures[number]
            recorded[number] = disclosure_record(
                contact=contact,
                key=disclosure.key,
                value=disclosure.value,
                audience=disclosure.audience,
                purpose=disclosure.purpose,
                source=disclosure.source,
                expires_at=(
                    anchor + disclosure.expires_in if disclosure.expires_in is not None else None
                ),
                actor=actor,
                occurred_at=occurred_at,
            )
            summary.disclosures += 1
        else:
            disclosure_withdraw(disclosure=recorded[number], actor=actor, occurred_at=occurred_at)
            summary.disclosures_withdrawn += 1
