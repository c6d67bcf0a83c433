"""Rulesets, qualification, handoffs, deals with buying groups, sale events, targets.

Rows are written only by ``handoff.services``; each write appends to the
ledger in the same transaction. A deal's sourcing is derived from the record
(``handoff.sourcing``), never typed in; an override keeps the derived value
beside it and is itself on the record.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models

RULESET_NAME_MAX_LENGTH = 120
NOTE_MAX_LENGTH = 2000
DEAL_NAME_MAX_LENGTH = 200
EXTERNAL_ID_MAX_LENGTH = 200
SOURCE_SYSTEM_MAX_LENGTH = 64
REASON_MAX_LENGTH = 2000
MONEY_DIGITS = 14
PERIOD_MAX_LENGTH = 7  # "2026-Q3"

DEFAULT_SOURCING_WINDOW_DAYS = 90
DEFAULT_LOOKBACK_DAYS = 365


class RulesetStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class Ruleset(models.Model):
    """The ground rules, versioned. Drafts change; activation freezes a ruleset for good."""

    name = models.CharField(max_length=RULESET_NAME_MAX_LENGTH)
    version = models.PositiveIntegerField(unique=True)
    status = models.CharField(
        max_length=8, choices=RulesetStatus.choices, default=RulesetStatus.DRAFT
    )
    # {"channel:webinar": 10, "kind:form": 5, "disclosure:budget": 15}
    points = models.JSONField(default=dict)
    mql_threshold = models.PositiveIntegerField()
    sla_hours = models.PositiveIntegerField()
    sourcing_window_days = models.PositiveIntegerField(default=DEFAULT_SOURCING_WINDOW_DAYS)
    lookback_days = models.PositiveIntegerField(default=DEFAULT_LOOKBACK_DAYS)
    auto_handoff = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="active"),
                name="ruleset_one_active",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=RulesetStatus.values), name="ruleset_status_valid"
            ),
            models.CheckConstraint(condition=models.Q(sla_hours__gte=1), name="ruleset_sla_min"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version}, {self.status})"

    @property
    def is_editable(self) -> bool:
        return self.status == RulesetStatus.DRAFT


class Qualification(models.Model):
    """A change of a contact's qualified state, and the ruleset version that decided it."""

    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="qualifications"
    )
    ruleset = models.ForeignKey(Ruleset, on_delete=models.PROTECT, related_name="+")
    score = models.IntegerField()
    qualified = models.BooleanField()
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            # The reports read the qualifications of a range, and a person's earlier ones.
            models.Index(fields=["occurred_at"], name="qualification_time"),
            models.Index(fields=["contact", "occurred_at"], name="qualification_contact_time"),
        ]

    def __str__(self) -> str:
        state = "qualified" if self.qualified else "not qualified"
        return f"contact {self.contact_id} {state} at {self.score} (v{self.ruleset_id})"


class HandoffStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class RejectReason(models.TextChoices):
    NOT_A_FIT = "not_a_fit", "Not a fit"
    NO_BUDGET = "no_budget", "No budget"
    BAD_TIMING = "bad_timing", "Bad timing"
    DUPLICATE = "duplicate", "Duplicate"
    UNREACHABLE = "unreachable", "Unreachable"
    OTHER = "other", "Other"


# What gave the buyer's say-so (``Handoff.buyer_signal``).
BUYER_SIGNAL_CONSENT = "consent:sales_contact"
BUYER_SIGNAL_STAGE = "stage:ready_to_talk"


class Handoff(models.Model):
    """Marketing hands a person to sales; sales accepts, rejects, or lets the SLA lapse."""

    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(
        max_length=8, choices=HandoffStatus.choices, default=HandoffStatus.PENDING
    )
    ruleset = models.ForeignKey(Ruleset, on_delete=models.PROTECT, related_name="handoffs")
    score = models.IntegerField()
    note = models.TextField(max_length=NOTE_MAX_LENGTH, blank=True, default="")
    # What gave the buyer's say-so: "consent:sales_contact" or "stage:ready_to_talk".
    buyer_signal = models.CharField(max_length=40)
    # Who may see what gave it: "all" for a consent (every role sees consents),
    # else the audience of the stage disclosure. A role outside it sees the
    # handoff only when the handoff is addressed to it (sales); see
    # ``handoff.selectors.handoffs_visible_to``. Blank: not known (recorded
    # before this was kept), so shown only to roles that see every audience.
    say_so_audience = models.CharField(max_length=16, blank=True, default="")
    # The stage disclosure that gave the say-so; its value is shown only to
    # those who may see that disclosure now.
    say_so_disclosure = models.ForeignKey(
        "contacts.Disclosure",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    automatic = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    due_at = models.DateTimeField()
    # A handoff may be meant for one rep; unassigned ones are anyone's in sales.
    assigned_to = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The rep who owns the person after acceptance.
    owner = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=16, choices=RejectReason.choices, blank=True, default="")
    decision_note = models.TextField(max_length=NOTE_MAX_LENGTH, blank=True, default="")

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            # One open handoff per person: two marketers (or marketing and the
            # automatic path) cannot both hand the same person over.
            models.UniqueConstraint(
                fields=["contact"],
                condition=models.Q(status="pending"),
                name="handoff_one_pending_per_contact",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=HandoffStatus.values), name="handoff_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="handoff_status_due"),
            models.Index(fields=["contact", "occurred_at"], name="handoff_contact_time"),
            # The reports' stages and leaks read the handoffs of a range by when they were
            # made or decided.
            models.Index(fields=["occurred_at"], name="handoff_time"),
            models.Index(fields=["decided_at"], name="handoff_decided_time"),
        ]

    def __str__(self) -> str:
        return f"Handoff #{self.pk} ({self.status})"

    @property
    def is_returned(self) -> bool:
        return self.status in (HandoffStatus.REJECTED, HandoffStatus.EXPIRED)

    @property
    def decided_late_by(self) -> timedelta | None:
        """How long after the SLA sales decided, for an accepted or rejected handoff."""
        if self.status not in (HandoffStatus.ACCEPTED, HandoffStatus.REJECTED):
            return None
        if self.decided_at is None or self.decided_at <= self.due_at:
            return None
        return self.decided_at - self.due_at


class DealSource(models.TextChoices):
    MARKETING = "marketing", "Marketing-sourced"
    SALES = "sales", "Sales-sourced"


class DealState(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    CHURNED = "churned", "Churned"


class Deal(models.Model):
    name = models.CharField(max_length=DEAL_NAME_MAX_LENGTH)
    organization = models.ForeignKey(
        "contacts.Organization", on_delete=models.PROTECT, related_name="deals"
    )
    amount = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=2)
    owner = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=8, choices=DealState.choices, default=DealState.OPEN)
    # Derived at creation from the record (handoff.sourcing); kept even when overridden.
    derived_source = models.CharField(max_length=10, choices=DealSource.choices)
    derived_source_reason = models.TextField()
    sourcing_handoff = models.ForeignKey(
        Handoff, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    source_override = models.CharField(
        max_length=10, choices=DealSource.choices, blank=True, default=""
    )
    override_reason = models.TextField(max_length=REASON_MAX_LENGTH, blank=True, default="")
    # Any marketing-team touch of the buying group before a sale event.
    influenced = models.BooleanField(default=False)
    source_system = models.CharField(max_length=SOURCE_SYSTEM_MAX_LENGTH, blank=True, default="")
    external_id = models.CharField(  # noqa: DJ001
        max_length=EXTERNAL_ID_MAX_LENGTH, null=True, blank=True
    )
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField()  # when the deal was created in the sales process
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="deal_external_id_unique"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="deal_amount_min"),
            models.CheckConstraint(
                condition=models.Q(state__in=DealState.values), name="deal_state_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["occurred_at"], name="deal_time"),
            # The open deals by age (stalled deals), and a rep's deals by time (their
            # dashboard): each read without walking every deal.
            models.Index(fields=["state", "occurred_at"], name="deal_state_time"),
            models.Index(fields=["owner", "occurred_at"], name="deal_owner_time"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        return self.source_override or self.derived_source

    @property
    def source_reason(self) -> str:
        if self.source_override:
            return f"Overridden to {self.source_override}: {self.override_reason}"
        return self.derived_source_reason


class BuyingRole(models.TextChoices):
    DECISION_MAKER = "decision_maker", "Decision maker"
    CHAMPION = "champion", "Champion"
    INFLUENCER = "influencer", "Influencer"
    USER = "user", "User"
    OTHER = "other", "Other"


class DealContact(models.Model):
    """A member of a deal's buying group."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="members")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=16, choices=BuyingRole.choices)
    # Allowed, but flagged: the person works for another organization than the deal's.
    other_organization = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["deal", "contact"], name="deal_contact_unique"),
        ]
        indexes = [models.Index(fields=["contact"], name="deal_contact_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} as {self.role} on deal {self.deal_id}"


class SaleKind(models.TextChoices):
    WON = "won", "Won"
    LOST = "lost", "Lost"
    EXPANSION = "expansion", "Expansion"
    RENEWAL = "renewal", "Renewal"
    CHURN = "churn", "Churn"


# Kinds that bring revenue in (conversions for attribution); churn takes it out.
REVENUE_KINDS = (SaleKind.WON, SaleKind.EXPANSION, SaleKind.RENEWAL)


class SaleEvent(models.Model):
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="sale_events")
    kind = models.CharField(max_length=10, choices=SaleKind.choices)
    amount = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=2)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    source_system = models.CharField(max_length=SOURCE_SYSTEM_MAX_LENGTH, blank=True, default="")
    external_id = models.CharField(  # noqa: DJ001
        max_length=EXTERNAL_ID_MAX_LENGTH, null=True, blank=True
    )
    recorded_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_system", "external_id"], name="sale_event_external_id_unique"
            ),
            models.UniqueConstraint(
                fields=["deal"], condition=models.Q(kind="won"), name="sale_event_one_won"
            ),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="sale_event_amount_min"),
            models.CheckConstraint(
                condition=models.Q(kind__in=SaleKind.values), name="sale_event_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["occurred_at"], name="sale_event_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on deal {self.deal_id}"


class ContributionTarget(models.Model):
    """The agreed share of pipeline marketing should source in a quarter."""

    period = models.CharField(max_length=PERIOD_MAX_LENGTH, unique=True)
    marketing_pipeline_share = models.DecimalField(max_digits=5, decimal_places=4)
    set_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-period"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(marketing_pipeline_share__gte=0)
                & models.Q(marketing_pipeline_share__lte=1),
                name="target_share_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.period}: {self.marketing_pipeline_share}"
