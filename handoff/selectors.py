"""Read-side queries for rulesets, handoffs, deals and targets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from contacts.channels import channel_label
from contacts.models import (
    JOURNEY_STAGE_KEY,
    SELF_DECLARED_SOURCES,
    Audience,
    Consent,
    ConsentPurpose,
    Contact,
    JourneyStage,
    Organization,
    TouchKind,
)
from contacts.selectors import (
    UserLike,
    audiences_visible_to,
    contacts_living,
    disclosures_visible_to,
)
from leadrecord.ledger import (
    ledger_deferred_recheck,
    ledger_deferring,
    ledger_lock_held,
    ledger_lock_state,
)
from leadrecord.models import LedgerAction
from leadrecord.roles import Role, user_has_role
from leadrecord.transaction_marks import (
    transaction_mark_get,
    transaction_mark_set,
    transaction_marks_forget,
    transaction_marks_get,
)

from .models import (
    BUYER_SIGNAL_CONSENT,
    MONEY_DIGITS,
    REVENUE_KINDS,
    ContributionTarget,
    Deal,
    DealContact,
    Handoff,
    HandoffStatus,
    Ruleset,
    RulesetStatus,
    SaleEvent,
    SaleKind,
)

# A pending handoff is "due soon" in its last quarter of the SLA (at most a day).
DUE_SOON_MAX = timedelta(hours=24)


def rulesets_all() -> QuerySet[Ruleset]:
    return Ruleset.objects.order_by("-version")


RULE_LABELS = {
    "mql_threshold": "MQL threshold (points to qualify)",
    "sla_hours": "Sales SLA (hours to answer a handoff)",
    "sourcing_window_days": "Sourcing window (days)",
    "lookback_days": "Attribution lookback (days)",
    "auto_handoff": "Automatic handoff",
}


def rule_label(field: str) -> str:
    """A ruleset field or point rule as people read it: "Points: channel Webinar"."""
    if field in RULE_LABELS:
        return RULE_LABELS[field]
    prefix, _, name = field.partition(":")
    if prefix == "channel":
        return f"Points: a touch on the channel {channel_label(name)}"
    if prefix == "kind":
        kind = TouchKind(name).label if name in TouchKind.values else name
        return f"Points: {kind.lower()}"
    if prefix == "disclosure":
        return f"Points: disclosed {name.replace('_', ' ')}"
    return field


@dataclass(frozen=True)
class RuleChange:
    field: str
    active: Any
    draft: Any

    @property
    def label(self) -> str:
        return rule_label(self.field.removeprefix("points "))


def ruleset_diff(draft: Ruleset, active: Ruleset | None) -> list[RuleChange]:
    """What activating ``draft`` would change, field by field and point rule by point rule."""
    changes: list[RuleChange] = []
    for field in (
        "mql_threshold",
        "sla_hours",
        "sourcing_window_days",
        "lookback_days",
        "auto_handoff",
    ):
        old = getattr(active, field) if active else None
        new = getattr(draft, field)
        if old != new:
            changes.append(RuleChange(field, old, new))
    old_points: dict[str, int] = dict(active.points) if active else {}
    new_points: dict[str, int] = dict(draft.points)
    for key in sorted(set(old_points) | set(new_points)):
        if old_points.get(key) != new_points.get(key):
            changes.append(RuleChange(f"points {key}", old_points.get(key), new_points.get(key)))
    return changes


def contacts_rescored_on_activation() -> int:
    """How many people activating a ruleset rescores: every living contact."""
    return contacts_living().count()


def handoffs_all() -> QuerySet[Handoff]:
    return Handoff.objects.select_related(
        "contact", "contact__organization", "ruleset", "owner", "assigned_to", "decided_by"
    )


# --- who may know of a handoff, and of its say-so ------------------------------
#
# A handoff is addressed to sales: sales reps and managers know of every one.
# Anyone else (a marketer, an integration) knows of a handoff only when what
# gave its say-so is in an audience they see; otherwise, for them, it does not
# exist: not in a list, a count, a detail, a page or the contact's timeline,
# exactly as for a person never handed off. What the say-so was (the value
# ``buyer_signal``) is shown only to those who may see it now: a consent to
# everyone, a stage to those who may see that disclosure
# (``contacts.selectors.disclosures_visible_to``); to the others it is null.

HANDOFF_ADDRESSEES = (Role.SALES_REP, Role.MANAGER)
EVERY_AUDIENCE = frozenset(Audience.values)


def handoff_audiences_known_to(user: UserLike | None) -> tuple[str, ...] | None:
    """The say-so audiences of the handoffs ``user`` may know of, sorted (reports are
    cached under it); None for every handoff."""
    if user is not None and user_has_role(user, *HANDOFF_ADDRESSEES):
        return None
    return tuple(sorted(audiences_visible_to(user)))


def handoffs_visible_to(user: UserLike | None) -> QuerySet[Handoff]:
    """The handoffs ``user`` may know of, each with ``say_so_shown`` (may see its say-so)."""
    queryset = handoffs_all()
    known = handoff_audiences_known_to(user)
    if known is not None:
        queryset = queryset.filter(say_so_audience__in=known)
    stage_visible = disclosures_visible_to(user).filter(pk=OuterRef("say_so_disclosure_id"))
    shown = Q(buyer_signal=BUYER_SIGNAL_CONSENT) | Q(Exists(stage_visible))
    if audiences_visible_to(user) == EVERY_AUDIENCE:
        # A stage handoff recorded before its disclosure was kept: only a
        # reader of every audience may see what it was.
        shown |= Q(say_so_disclosure__isnull=True)
    return queryset.annotate(say_so_shown=ExpressionWrapper(shown, output_field=BooleanField()))


def handoff_say_so_for(user: UserLike | None, handoff: Handoff) -> str | None:
    """``handoff.buyer_signal`` if ``user`` may see it, else None."""
    shown = getattr(handoff, "say_so_shown", None)
    if shown is None:
        annotated = handoffs_visible_to(user).filter(pk=handoff.pk).first()
        shown = getattr(annotated, "say_so_shown", False)
    return handoff.buyer_signal if shown else None


def handoff_queue(user: UserLike | None) -> QuerySet[Handoff]:
    """Pending handoffs a rep may take (unassigned or theirs; a manager sees all), oldest due
    first."""
    queryset = handoffs_visible_to(user).filter(
        status=HandoffStatus.PENDING, contact__erased_at__isnull=True
    )
    if user is not None and not user_has_role(user, Role.MANAGER):
        queryset = queryset.filter(Q(assigned_to__isnull=True) | Q(assigned_to=user.pk))
    return queryset.order_by("due_at", "id")


def handoffs_returned(user: UserLike | None) -> QuerySet[Handoff]:
    """Rejected and expired handoffs: back with marketing, most recent first."""
    return (
        handoffs_visible_to(user)
        .filter(status__in=[HandoffStatus.REJECTED, HandoffStatus.EXPIRED])
        .order_by("-decided_at", "-id")
    )


def handoffs_of_contact(user: UserLike | None, contact_id: int) -> QuerySet[Handoff]:
    return handoffs_visible_to(user).filter(contact_id=contact_id).order_by("-occurred_at", "-id")


def handoff_subjects_hidden_from(
    user: UserLike | None, contact_ids: list[int]
) -> list[tuple[str, int]]:
    """Handoffs of these people that ``user`` may not know of, as ledger subjects (the
    contact's timeline leaves their entries out)."""
    known = handoff_audiences_known_to(user)
    if known is None:
        return []
    hidden = (
        Handoff.objects.filter(contact_id__in=contact_ids)
        .exclude(say_so_audience__in=known)
        .values_list("id", flat=True)
    )
    return [("handoff", handoff_id) for handoff_id in hidden]


def sla_state(handoff: Handoff, *, now: datetime | None = None) -> str:
    """``on_time``, ``due_soon`` or ``overdue`` for a pending handoff; else its status."""
    if handoff.status != HandoffStatus.PENDING:
        return str(handoff.status)
    now = now or timezone.now()
    if now >= handoff.due_at:
        return "overdue"
    window = min((handoff.due_at - handoff.occurred_at) / 4, DUE_SOON_MAX)
    return "due_soon" if handoff.due_at - now <= window else "on_time"


def deals_all() -> QuerySet[Deal]:
    return Deal.objects.select_related(
        "organization", "owner", "sourcing_handoff"
    ).prefetch_related(
        Prefetch(
            "members",
            queryset=DealContact.objects.select_related("contact").order_by("id"),
        ),
        Prefetch("sale_events", queryset=SaleEvent.objects.order_by("occurred_at", "id")),
    )


def deals_listed() -> QuerySet[Deal]:
    """Deals for a list, each with ``effective_source``: the override when there is one,
    else the derived source."""
    return Deal.objects.select_related("organization", "owner").annotate(
        effective_source=Case(
            When(source_override="", then=F("derived_source")),
            default=F("source_override"),
            output_field=CharField(),
        )
    )


def deals_amount_total(queryset: QuerySet[Deal]) -> Decimal:
    return queryset.aggregate(total=Sum("amount", default=Value(Decimal(0))))["total"]


def targets_all() -> QuerySet[ContributionTarget]:
    return ContributionTarget.objects.order_by("-period")


def handoffs_accepted_by(user: UserLike) -> QuerySet[Handoff]:
    """Handoffs this user accepted and owns, most recent first: where their deals start."""
    return (
        handoffs_all()
        .filter(status=HandoffStatus.ACCEPTED, owner_id=user.pk, contact__erased_at__isnull=True)
        .order_by("-decided_at", "-id")
    )


def sales_users() -> QuerySet[User]:
    """Who may own a deal or a handed-off person: active sales reps and managers."""
    return (
        User.objects.filter(groups__name__in=[Role.SALES_REP, Role.MANAGER], is_active=True)
        .distinct()
        .order_by("username")
    )


def sales_reps() -> QuerySet[User]:
    """Active sales reps: whom marketing may hand a person to by name."""
    return (
        User.objects.filter(groups__name=Role.SALES_REP, is_active=True)
        .distinct()
        .order_by("username")
    )


# Enough to tell "one" from "several" when an organization is named on a page.
ORGANIZATION_MATCHES_MAX = 2


def organizations_named(text: str) -> list[Organization]:
    """Organizations a person means by ``text``: the one with this domain, else those with
    this name (any case). More than one means the name is ambiguous."""
    text = text.strip()
    by_domain = (
        Organization.objects.filter(domain=text.lower().rstrip(".")).first() if text else None
    )
    if by_domain is not None:
        return [by_domain]
    # LOWER on both sides, which the organization_name_lower index serves (the ORM's
    # iexact compares UPPER, which no index serves: every organization would be read).
    named = Organization.objects.alias(name_lower=Lower("name")).filter(
        name_lower=Lower(Value(text))
    )
    return list(named[:ORGANIZATION_MATCHES_MAX])


# The active ruleset as this transaction read it under the ledger lock
# (leadrecord.transaction_marks), in a transaction that asked for it.
ACTIVE_RULESET_MARK = "handoff.ruleset_active"
_REMEMBER_MARK = "handoff.ruleset_active_remember"


def ruleset_active_remember() -> None:
    """For the rest of the caller's transaction, ``ruleset_active`` reads the active
    ruleset once under the ledger lock and answers that again.

    For a write that runs several services that each follow scores (a form sent asks
    it after the answers, the touch and a say-so): only a writer holding the ledger
    lock activates a ruleset (``ruleset_activate``), so while this transaction holds
    it the answer cannot change, but by this transaction's own writes, which forget
    it (``ruleset_active_forget``).
    """
    transaction_mark_set(_REMEMBER_MARK, True)


# What changes the active ruleset.
_RULESET_CHANGES = (
    LedgerAction.RULESET_ACTIVATE,
    LedgerAction.RULESET_RETIRE,
    LedgerAction.RULESET_UPDATE,
)


def ruleset_active() -> Ruleset | None:
    # Read without the lock in a transaction that defers its entries (a form sent by a
    # new person): its flush rechecks that no ruleset changed meanwhile, so the answer
    # may be remembered there as under the lock. (Every score a form post follows asks
    # this: the marks are read in two lookups.)
    deferring, locked = ledger_lock_state()
    remember, known = transaction_marks_get(_REMEMBER_MARK, ACTIVE_RULESET_MARK)
    if deferring:
        ledger_deferred_recheck(_RULESET_CHANGES)
    remembered = remember and (locked or deferring)
    if remembered and known is not None:
        return known[0]
    # Every write that can change a score asks this: a raw query skips the
    # ORM's query compilation (about half of its cost). A partial unique
    # index allows one active ruleset at most.
    found = Ruleset.objects.raw(
        f"SELECT * FROM {Ruleset._meta.db_table} WHERE status = %s",  # noqa: S608 -- model name
        [RulesetStatus.ACTIVE.value],
    )
    active = next(iter(found), None)
    if remembered:
        transaction_mark_set(ACTIVE_RULESET_MARK, (active,))
    return active


def ruleset_active_none_known() -> None:
    """The caller, remembering the active ruleset (``ruleset_active_remember``), read in a
    query of its own that none is active, under the ledger lock or in a transaction that
    defers its entries: ``ruleset_active`` answers None without asking again.

    For a form sent by a new person, whose one read of what it needs asks this too
    (``buyers.bulk``); as for ``ruleset_active``'s own read, a deferred flush rechecks
    that no ruleset changed meanwhile.
    """
    deferring = ledger_deferring()
    if not (transaction_mark_get(_REMEMBER_MARK) and (ledger_lock_held() or deferring)):
        return
    if deferring:
        ledger_deferred_recheck(_RULESET_CHANGES)
    transaction_mark_set(ACTIVE_RULESET_MARK, (None,))


def ruleset_active_forget() -> None:
    """A ruleset changed in this transaction: the next ``ruleset_active`` reads it again."""
    transaction_marks_forget(ACTIVE_RULESET_MARK)


# --- the contact list's handoff filters -------------------------------------------------


def contacts_owned_by(
    user: UserLike | None, queryset: QuerySet[Contact], owner_id: int
) -> QuerySet[Contact]:
    """The people whose latest accepted handoff that ``user`` may know of makes
    ``owner_id`` their owner."""
    latest_owner = (
        handoffs_visible_to(user)
        .filter(contact=OuterRef("pk"), status=HandoffStatus.ACCEPTED)
        .order_by("-decided_at", "-id")
        .values("owner_id")[:1]
    )
    return queryset.annotate(handoff_owner_id=Subquery(latest_owner)).filter(
        handoff_owner_id=owner_id
    )


def contacts_can_hand_off(
    user: UserLike | None, queryset: QuerySet[Contact], *, can: bool = True
) -> QuerySet[Contact]:
    """The people ``user`` could hand to sales now (or, with ``can=False``, could not):
    qualified, with a say-so that ``user`` may see (a granted ``sales_contact`` consent as
    the latest word, or a self-declared ``ready_to_talk`` stage), and no pending handoff
    that ``user`` knows of. The same conditions as ``handoff_create`` asks, read set-wise."""
    latest_sales_consent = (
        Consent.objects.filter(contact=OuterRef("pk"), purpose=ConsentPurpose.SALES_CONTACT)
        .order_by("-occurred_at", "-id")
        .values("granted")[:1]
    )
    latest_own_stage = (
        disclosures_visible_to(user)
        .filter(contact=OuterRef("pk"), key=JOURNEY_STAGE_KEY, source__in=SELF_DECLARED_SOURCES)
        .order_by("-disclosed_at", "-id")
        .values("value")[:1]
    )
    pending = handoffs_visible_to(user).filter(contact=OuterRef("pk"), status=HandoffStatus.PENDING)
    ready = (
        Q(qualified=True)
        & (Q(sales_consent=True) | Q(own_stage=JourneyStage.READY_TO_TALK))
        & ~Q(Exists(pending))
    )
    # Coalesced, so that a person with no consent or no stage is "cannot", not unknown.
    annotated = queryset.annotate(
        sales_consent=Coalesce(
            Subquery(latest_sales_consent), Value(False), output_field=BooleanField()
        ),
        own_stage=Coalesce(Subquery(latest_own_stage), Value(""), output_field=TextField()),
    )
    return annotated.filter(ready) if can else annotated.exclude(ready)


# --- organizations ---------------------------------------------------------------------


def _signed_sale_amount() -> Case:
    """A sale event's amount as revenue: in for the revenue kinds, out for churn."""
    return Case(
        When(kind__in=REVENUE_KINDS, then=F("amount")),
        When(kind=SaleKind.CHURN, then=-F("amount")),
        default=Value(Decimal(0)),
        output_field=DecimalField(max_digits=MONEY_DIGITS + 2, decimal_places=2),
    )


def _count_of(queryset: QuerySet[Any]) -> Subquery:
    return Subquery(
        queryset.order_by().values("organization_id").annotate(n=Count("id")).values("n")[:1],
        output_field=IntegerField(),
    )


def organizations_listed() -> QuerySet[Organization]:
    """Organizations with ``people_count`` (living), ``deal_count`` and ``revenue`` (sale events of
    their deals: won, expansion and renewal in, churn out)."""
    revenue = (
        SaleEvent.objects.filter(deal__organization=OuterRef("pk"))
        .order_by()
        .values("deal__organization")
        .annotate(total=Sum(_signed_sale_amount()))
        .values("total")[:1]
    )
    return Organization.objects.annotate(
        people_count=Coalesce(
            _count_of(
                Contact.objects.filter(
                    organization=OuterRef("pk"), erased_at__isnull=True, merged_into__isnull=True
                )
            ),
            0,
        ),
        deal_count=Coalesce(_count_of(Deal.objects.filter(organization=OuterRef("pk"))), 0),
        revenue=Coalesce(
            Subquery(revenue),
            Value(Decimal(0)),
            output_field=DecimalField(max_digits=MONEY_DIGITS + 2, decimal_places=2),
        ),
    )


def organization_deals(organization: Organization) -> QuerySet[Deal]:
    return deals_listed().filter(organization=organization).order_by("-occurred_at", "-id")


def handoff_queue_counts(user: UserLike | None, *, now: datetime | None = None) -> dict[str, int]:
    """How many handoffs wait in ``user``'s queue: ``waiting`` (all), ``due_soon`` and
    ``overdue`` (as ``sla_state`` says; the queue is short, so each is read once)."""
    now = now or timezone.now()
    counts = {"waiting": 0, "due_soon": 0, "overdue": 0}
    for handoff in handoff_queue(user).select_related(None).only("status", "due_at", "occurred_at"):
        counts["waiting"] += 1
        state = sla_state(handoff, now=now)
        if state in counts:
            counts[state] += 1
    return counts


def deals_from_handoff(handoff: Handoff) -> QuerySet[Deal]:
    """Deals with the handoff's person in the buying group, opened since sales accepted them."""
    since = handoff.decided_at or handoff.occurred_at
    return deals_all().filter(members__contact_id=handoff.contact_id, occurred_at__gte=since)
