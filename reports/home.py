"""What each role's home page counts: the day's work, each number with the list behind it.

Numbers come from the selectors and report metrics that already define them (the queue's
SLA states, the returned handoffs, the contribution against target, the stalled deals),
so the home page and the lists it links to always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from contacts import selectors as contact_selectors
from contacts.models import Contact, ImportJob, ImportStatus
from handoff import selectors as handoff_selectors
from handoff.models import DealState
from leadrecord.models import LedgerAction, LedgerEntry
from leadrecord.roles import Role, user_has_role

from . import metrics
from .metrics_funnel import leak_url
from .periods import quarter_first_day

# How far back the marketer's and the privacy officer's recent counts look.
RECENT_DAYS = 30


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    url: str
    # "warn" when the number asks for action now (overdue, stalled, failed).
    tone: str = ""


@dataclass(frozen=True)
class WorkSection:
    title: str
    figures: list[Figure] = field(default_factory=list)
    note: str = ""


def _url(name: str, **query: object) -> str:
    url = reverse(name)
    return f"{url}?{urlencode(query)}" if query else url


def _sales_rep(user: User) -> WorkSection:
    queue = handoff_selectors.handoff_queue_counts(user)
    open_deals = handoff_selectors.deals_listed().filter(owner=user, state=DealState.OPEN).count()
    queue_url = reverse("handoff-queue")
    return WorkSection(
        "Your queue and deals",
        [
            Figure("People waiting for you", str(queue["waiting"]), queue_url),
            Figure("Due soon", str(queue["due_soon"]), queue_url),
            Figure("Overdue", str(queue["overdue"]), queue_url, "warn" if queue["overdue"] else ""),
            Figure(
                "Your open deals",
                str(open_deals),
                _url("deals", owner=user.pk, state=DealState.OPEN),
            ),
        ],
    )


def _marketer(user: User) -> WorkSection:
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    returned = handoff_selectors.handoffs_returned(user).filter(decided_at__gte=since).count()
    imports = ImportJob.objects.filter(created_by=user, created_at__gte=since)
    failed = imports.filter(status=ImportStatus.FAILED).count()
    can_hand_off = handoff_selectors.contacts_can_hand_off(
        user, contact_selectors.contacts_for(user)
    ).count()
    return WorkSection(
        "Your marketing work",
        [
            Figure(
                f"Handoffs returned in the last {RECENT_DAYS} days",
                str(returned),
                reverse("handoffs-returned"),
            ),
            Figure(
                "People you can hand off", str(can_hand_off), _url("contacts", can_hand_off="true")
            ),
            Figure(
                f"Your imports in the last {RECENT_DAYS} days",
                str(imports.count()),
                reverse("touch-import"),
            ),
            Figure(
                "Imports that failed",
                str(failed),
                reverse("touch-import"),
                "warn" if failed else "",
            ),
        ],
    )


def _percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _manager(user: User) -> WorkSection:
    today = timezone.localdate()
    start = quarter_first_day(today)
    known = handoff_selectors.handoff_audiences_known_to(user)
    contribution = metrics.contribution(start, today, known)
    stalled = metrics.deals_stalled(today, today, known).count()
    queue = handoff_selectors.handoff_queue_counts(user)
    return WorkSection(
        "This quarter",
        [
            Figure(
                "Marketing's share of pipeline",
                _percent(contribution.pipeline.marketing_share),
                reverse("dashboard-manager"),
            ),
            Figure(
                "Target share",
                _percent(contribution.target_share),
                reverse("targets"),
            ),
            Figure(
                "Stalled deals",
                str(stalled),
                leak_url("deals_stalled", today, today),
                "warn" if stalled else "",
            ),
            Figure(
                "Overdue handoffs",
                str(queue["overdue"]),
                reverse("handoff-queue"),
                "warn" if queue["overdue"] else "",
            ),
        ],
        note=_target_note(contribution.pipeline.marketing_share, contribution.target_share),
    )


def _target_note(share: Decimal | None, target: Decimal | None) -> str:
    if target is None:
        return "No target is set for this quarter yet."
    if share is None:
        return "No pipeline yet this quarter."
    if share >= target:
        return "Marketing's share of pipeline meets the target."
    return f"Marketing's share of pipeline is {_percent(target - share)} short of the target."


def _privacy_officer(user: User) -> WorkSection:
    since = timezone.now() - timedelta(days=RECENT_DAYS)
    day = since.date().isoformat()
    recent = LedgerEntry.objects.filter(occurred_at__gte=since)
    withdrawals = contact_selectors.consent_withdrawals_since(since)
    # People who asked from their portal and are not erased yet (erasure ends a request);
    # read from the record, since the portal's app sits beside this one.
    asked = LedgerEntry.objects.filter(action=LedgerAction.ERASURE_REQUEST).values("contact_id")
    waiting = Contact.objects.filter(erased_at__isnull=True, pk__in=asked).count()
    return WorkSection(
        f"Requests in the last {RECENT_DAYS} days",
        [
            Figure(
                "Erasure requests waiting",
                str(waiting),
                reverse("erasure_requests"),
                "warn" if waiting else "",
            ),
            Figure(
                "Consents withdrawn",
                str(withdrawals),
                _url("ledger", action=LedgerAction.CONSENT_RECORD, occurred_from=day),
                "warn" if withdrawals else "",
            ),
            Figure(
                "Data exports answered",
                str(recent.filter(action=LedgerAction.CONTACT_EXPORT).count()),
                _url("ledger", action=LedgerAction.CONTACT_EXPORT, occurred_from=day),
            ),
            Figure(
                "People erased",
                str(recent.filter(action=LedgerAction.CONTACT_ERASE).count()),
                _url("ledger", action=LedgerAction.CONTACT_ERASE, occurred_from=day),
            ),
        ],
        note="People ask from their portal (the erasure requests) or outside the product; "
        "export and erasure answer them from a person's page, and each answer is on the record.",
    )


def home_work(user: User) -> list[WorkSection]:
    """The work sections of ``user``'s home page, one per role they hold."""
    sections = []
    if user_has_role(user, Role.SALES_REP):
        sections.append(_sales_rep(user))
    if user_has_role(user, Role.MARKETER):
        sections.append(_marketer(user))
    if user_has_role(user, Role.MANAGER):
        sections.append(_manager(user))
    if user_has_role(user, Role.PRIVACY_OFFICER):
        sections.append(_privacy_officer(user))
    return sections
