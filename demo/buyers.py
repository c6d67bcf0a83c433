"""The buyer's side of the demo: a published form, consented visits, a portal user.

Written after the demo year (its campaigns name the visits' and the form's
``utm_campaign``), through the ``buyers`` services like a real website would
call them, so a newcomer finds on the record what a buyer does: people who sent
the form (as themselves on the ledger), a visitor whose consented visits became
touches when they sent it again, cookieless daily counts, and a person who
changed what they share in the portal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from buyers.models import BuyerForm
from buyers.portal import portal_consent_set, portal_disclosure_audience
from buyers.services import Answer, Arrival, FormInput, buyer_form_create, form_submit
from buyers.visits import visit_record
from contacts.models import Audience, Campaign, ConsentPurpose, Contact, Disclosure, JourneyStage
from leadrecord.ledger import Actor

DEMO_FORM_SLUG = "talk-to-us"
DEMO_SITE = "https://www.example.com"
# The campaign the form runs under (a demo campaign, see demo/pipeline.py).
DEMO_FORM_CAMPAIGN = "Nurture: closing the handoff loop"
DEMO_FORM_CONSENTS = (
    {
        "purpose": ConsentPurpose.ANALYTICS,
        "notice": "Remember my visits to this site so my next enquiry has its context.",
        "version": "2026-01",
    },
    {
        "purpose": ConsentPurpose.MARKETING_EMAIL,
        "notice": "Send me the monthly newsletter. I can stop it at any time.",
        "version": "2026-01",
    },
    {
        "purpose": ConsentPurpose.SALES_CONTACT,
        "notice": "A member of the sales team may contact me about my enquiry.",
        "version": "2026-01",
    },
)
DEMO_FORM_DISCLOSURES = (
    {"key": "journey_stage", "label": "Where are you in your search?"},
    {"key": "budget", "label": "Budget for this year"},
    {"key": "timeline", "label": "When do you want to decide?"},
)
# Page views before any consent: counted per day and page, nothing else kept.
_ANONYMOUS_VIEWS = (
    (9, "/pricing/?utm_campaign=lead-routing-software"),
    (9, "/"),
    (6, "/blog/attribution-basics/?utm_campaign=marketing-attribution"),
    (3, "/"),
    (1, "/pricing/"),
)


@dataclass
class DemoBuyersSummary:
    form: str = ""
    submissions: int = 0
    visits_kept: int = 0
    views_counted: int = 0
    portal_changes: int = 0
    skipped: str = ""


def _arrival(path: str, *, referrer: str = "") -> Arrival:
    return Arrival(page_url=f"{DEMO_SITE}{path}", referrer=referrer)


def _utm_arrival(path: str, utm_campaign: str, *, utm_source: str, utm_medium: str) -> Arrival:
    query = f"utm_source={utm_source}&utm_medium={utm_medium}&utm_campaign={utm_campaign}"
    return Arrival(
        page_url=f"{DEMO_SITE}{path}?{query}",
        utm={"utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign},
    )


def demo_buyers_seed(*, marketer: Actor, now: datetime) -> DemoBuyersSummary:
    """Publish the demo form and play three buyers through it, back-dated before ``now``.

    Needs the demo year (its campaigns and people); writes nothing when the demo
    form exists already or there are not three living people. All or nothing.
    """
    if BuyerForm.objects.filter(slug=DEMO_FORM_SLUG).exists():
        return DemoBuyersSummary(skipped="the demo form exists")
    # Three living people; the visitor one who never answered about analytics, so the
    # consent given on the form is the one in force when their visits are counted.
    living = Contact.objects.filter(
        erased_at__isnull=True, merged_into__isnull=True, email__isnull=False
    )
    visitor = living.exclude(consents__purpose=ConsentPurpose.ANALYTICS).order_by("pk").first()
    others = list(living.exclude(id=visitor.id).order_by("pk")[:2]) if visitor else []
    if visitor is None or len(others) < 2:
        return DemoBuyersSummary(skipped="no demo people to play the buyers")
    talker, portal_user = others
    summary = DemoBuyersSummary(form=f"/f/{DEMO_FORM_SLUG}/")
    with transaction.atomic():
        form = buyer_form_create(
            slug=DEMO_FORM_SLUG,
            title="Talk to us about your pipeline",
            intro="Tell us where you are; you decide which of our teams sees each answer.",
            consents=DEMO_FORM_CONSENTS,
            disclosures=DEMO_FORM_DISCLOSURES,
            campaign=Campaign.objects.filter(name=DEMO_FORM_CAMPAIGN).first(),
            actor=marketer,
        )
        for days, path in _ANONYMOUS_VIEWS:
            visit_record(page_url=f"{DEMO_SITE}{path}", occurred_at=now - timedelta(days=days))
            summary.views_counted += 1

        # A visitor who allows analytics on their first form: their next visits are
        # kept and become their touches (first and last campaign) with the next form.
        sent = form_submit(
            form=form,
            data=FormInput(
                email=visitor.email or "",
                first_name=visitor.first_name,
                last_name=visitor.last_name,
                consents=frozenset({ConsentPurpose.ANALYTICS, ConsentPurpose.MARKETING_EMAIL}),
                answers={"journey_stage": Answer(JourneyStage.LEARNING, Audience.MARKETING)},
            ),
            arrival=_utm_arrival(
                "/guides/attribution/",
                "marketing-attribution",
                utm_source="google",
                utm_medium="cpc",
            ),
            occurred_at=now - timedelta(days=20),
        )
        summary.submissions += 1
        for days, path in (
            (14, "/blog/handoff-loop/?utm_source=newsletter&utm_campaign=monthly-edition"),
            (8, "/pricing/?utm_source=google&utm_medium=cpc&utm_campaign=lead-routing-software"),
            (8, "/customers/"),
        ):
            kept = visit_record(
                page_url=f"{DEMO_SITE}{path}",
                referrer="https://www.google.com/" if "google" in path else "",
                visitor_token=sent.visitor_token,
                occurred_at=now - timedelta(days=days),
            )
            summary.visits_kept += int(kept)
        form_submit(
            form=form,
            data=FormInput(
                email=visitor.email or "",
                answers={
                    "journey_stage": Answer(JourneyStage.COMPARING, Audience.ALL),
                    "timeline": Answer("This quarter", Audience.ALL),
                },
            ),
            arrival=_arrival("/pricing/", referrer=f"{DEMO_SITE}/customers/"),
            visitor_token=sent.visitor_token,
            occurred_at=now - timedelta(days=7),
        )
        summary.submissions += 1

        # A buyer who shares the budget with sales only: marketing never sees it.
        form_submit(
            form=form,
            data=FormInput(
                email=talker.email or "",
                consents=frozenset({ConsentPurpose.SALES_CONTACT}),
                answers={
                    "budget": Answer("About 40,000 a year", Audience.SALES),
                    "timeline": Answer("Next quarter", Audience.MARKETING),
                },
            ),
            arrival=_utm_arrival(
                "/demo/", "lead-routing-software", utm_source="google", utm_medium="cpc"
            ),
            occurred_at=now - timedelta(days=5),
        )
        summary.submissions += 1

        # A buyer who shared widely on the form, then narrowed it in the portal and
        # stopped the newsletter: each change on the ledger as their own.
        form_submit(
            form=form,
            data=FormInput(
                email=portal_user.email or "",
                consents=frozenset({ConsentPurpose.MARKETING_EMAIL}),
                answers={
                    "budget": Answer("Under 10,000", Audience.ALL),
                    "journey_stage": Answer(JourneyStage.LEARNING, Audience.ALL),
                },
            ),
            arrival=_arrival("/", referrer="https://www.linkedin.com/"),
            occurred_at=now - timedelta(days=3),
        )
        summary.submissions += 1
        budget = Disclosure.objects.filter(
            contact=portal_user, key="budget", value="Under 10,000", withdrawn_at__isnull=True
        ).latest("pk")
        portal_disclosure_audience(
            contact=portal_user, disclosure_id=budget.pk, audience=Audience.MARKETING
        )
        portal_consent_set(
            contact=portal_user, purpose=ConsentPurpose.MARKETING_EMAIL, granted=False
        )
        summary.portal_changes = 2
    return summary
