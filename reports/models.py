"""Attribution runs and what they computed.

A run's credits are written while it is ``running`` and become visible only
when the same transaction that wrote them marks the run ``complete``: readers
always take the latest complete run (``reports.selectors.run_latest_complete``),
so they keep the previous one until the new one is whole. A run killed midway
leaves no credits (its transaction rolled back) and is marked ``failed`` by
the next run.
"""

from __future__ import annotations

from datetime import date

from django.db import models

MODEL_NAME_MAX_LENGTH = 20


class AttributionModel(models.TextChoices):
    FIRST_TOUCH = "first_touch", "First touch"
    LAST_TOUCH = "last_touch", "Last touch"
    LINEAR = "linear", "Linear"
    TIME_DECAY = "time_decay", "Time decay"
    POSITION_BASED = "position_based", "Position based (40/20/40)"
    W_SHAPED = "w_shaped", "W-shaped"
    MARKOV = "markov", "Markov (removal effect)"
    SHAPLEY = "shapley", "Shapley"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"


class AttributionRun(models.Model):
    status = models.CharField(max_length=8, choices=RunStatus.choices, default=RunStatus.QUEUED)
    requested_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    trigger = models.CharField(max_length=16, default="api")  # api, schedule, command
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ruleset_version = models.PositiveIntegerField(null=True, blank=True)
    lookback_days = models.PositiveIntegerField(null=True, blank=True)
    conversions = models.PositiveIntegerField(default=0)
    touches = models.PositiveIntegerField(default=0)
    model_names = models.JSONField(default=list)
    # Per model the run could not compute, why (readers answer 409 model_unavailable).
    models_unavailable = models.JSONField(default=dict, blank=True)
    # Per model, per channel id (a string, as JSON keys are), the credit no converting
    # path can carry: the origin of the model's unallocated rows (channel id 0).
    unallocated = models.JSONField(default=dict, blank=True)
    # A digest of the input: two runs over the same record have the same one
    # (and, the engine being deterministic, the same credits).
    input_digest = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # The ledger's last seq when the run began reading the record: changes after it may
    # be missing from the run ("K changes since", reports.freshness).
    ledger_mark = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RunStatus.values), name="run_status_valid"
            )
        ]
        indexes = [models.Index(fields=["status", "id"], name="run_status")]

    def __str__(self) -> str:
        return f"Attribution run #{self.pk} ({self.status})"


class AttributionCredit(models.Model):
    """One model's credit to one channel/campaign for one conversion (a sale event).

    On PostgreSQL the table is partitioned by run (``reports.credit_store``): each run's
    rows are loaded into a table of their own and attached whole when the run completes,
    so there is no per-row foreign key to check, and an old run is dropped whole.
    """

    # No database constraint: a run's rows arrive by the million and go as one table.
    run = models.ForeignKey(
        AttributionRun, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    model = models.CharField(max_length=MODEL_NAME_MAX_LENGTH, choices=AttributionModel.choices)
    sale_event_id = models.BigIntegerField()
    deal_id = models.BigIntegerField()
    channel_id = models.BigIntegerField()
    campaign_id = models.BigIntegerField(null=True, blank=True)
    team = models.CharField(max_length=16)
    credit = models.FloatField()  # in the reporting currency
    conversion_share = models.FloatField()  # the part of the conversion (sums to 1)
    converted_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.model}: {self.credit:.2f} to channel {self.channel_id}"


class AttributionRunPartition(models.Model):
    """One partition of a run whose credits are loaded, with what the swap needs from it
    (its daily sums): written in the transaction that loads its rows, so a partition
    carried out twice (a redelivered task) loads once."""

    run = models.ForeignKey(AttributionRun, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveIntegerField()
    rows = models.PositiveBigIntegerField(default=0)
    result = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="run_partition_once")]

    def __str__(self) -> str:
        return f"run #{self.run_id} partition {self.index}"


class AttributionDaily(models.Model):
    """Credits summed per day (in the reporting time zone), for fast reports over any range."""

    run = models.ForeignKey(AttributionRun, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=MODEL_NAME_MAX_LENGTH, choices=AttributionModel.choices)
    day = models.DateField()
    channel_id = models.BigIntegerField()
    campaign_id = models.BigIntegerField(null=True, blank=True)
    team = models.CharField(max_length=16)
    credit = models.FloatField()
    conversions = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["run", "model", "day"], name="daily_run_model_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.model}: {self.credit:.2f}"


# --- aggregates behind the people counts (reports.aggregates refreshes them) ------------


class TouchDay(models.Model):
    """One person with at least one touch on one day (reporting time zone).

    ``previous_day`` is the same person's previous day with a touch (NULL for the first),
    so "people with a touch from s to e" is exactly the number of rows with ``day`` in
    [s, e] and ``previous_day`` before s (or none): each such person has exactly one such
    row, their first touch day in the range. Read by ``reports.metrics``; rewritten whole
    by ``reports.aggregates.people_aggregates_refresh``.
    """

    contact_id = models.BigIntegerField()
    day = models.DateField()
    previous_day = models.DateField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["day", "previous_day"], name="touch_day_range"),
            models.Index(fields=["contact_id", "day"], name="touch_day_contact"),
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} on {self.day}"


class PersonMilestone(models.Model):
    """One row per person (a contact not merged into another): when they were created, first
    touched and first won. Refreshed with ``TouchDay``."""

    contact_id = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField()
    first_touch_at = models.DateTimeField(null=True, blank=True)
    # When the person first became a customer: the first won deal they were a member of.
    first_won_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="milestone_created"),
            models.Index(fields=["first_touch_at"], name="milestone_first_touch"),
            models.Index(fields=["first_won_at"], name="milestone_first_won"),
            # The time from creation to first touch: the median reads one hour of it.
            models.Index(
                models.F("first_touch_at") - models.F("created_at"), name="milestone_span"
            ),
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id}"


class PeopleRefresh(models.Model):
    """A state of the people aggregates: when it was written, the ledger seq it is as of and
    the last touch, contact, sale event and deal member it includes: rows with higher ids
    (and merges since) are counted live on top of them (``reports.aggregates``)."""

    refreshed_at = models.DateTimeField()
    # The ledger's last seq as the state was worked out: the next update reads the entries
    # after it. None for a state from before marks were kept (the next update rebuilds).
    ledger_mark = models.PositiveBigIntegerField(null=True, blank=True)
    last_touch_id = models.BigIntegerField(default=0)
    last_contact_id = models.BigIntegerField(default=0)
    last_sale_event_id = models.BigIntegerField(default=0)
    last_deal_member_id = models.BigIntegerField(default=0)
    # The first and last days with a touch, which bound the days a count has to look at.
    first_touch_day = models.DateField(null=True, blank=True)
    last_touch_day = models.DateField(null=True, blank=True)
    touch_days = models.PositiveIntegerField(default=0)
    people = models.PositiveIntegerField(default=0)
    # The last deal ``SalesDaily`` includes, and the zone its days are in (another zone:
    # the next update rebuilds).
    last_deal_id = models.BigIntegerField(default=0)
    time_zone = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"people aggregates of {self.refreshed_at.isoformat()}"


class TouchDayCount(models.Model):
    """``TouchDay`` counted per day and previous day, cumulatively (PostgreSQL only).

    ``people`` is the number of people with a touch on ``day`` whose previous touch day is
    on or before ``previous_day`` (``FIRST_EVER`` standing for "none"), so the people
    touched from s to e are the sum, over the days d from s to e, of the row of d with the
    greatest ``previous_day`` before s: one index probe per day instead of a scan of every
    person-day in the range.
    """

    FIRST_EVER = date(1, 1, 1)

    day = models.DateField()
    previous_day = models.DateField()
    people = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "previous_day"], name="touch_day_count_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.people} after {self.previous_day}"


class CreatedDayCount(models.Model):
    """The persons (as of the rebuild) created on or before ``day``: one row per day with any."""

    day = models.DateField(unique=True)
    people = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.day}: {self.people}"


class SalesDaily(models.Model):
    """Money per day (reporting time zone): the amounts of deals created (``kind`` is
    ``pipeline``) and of sale events (``kind`` is theirs), by the deal's effective source
    and whether it is influenced. Kept by ``reports.rollups`` with the people aggregates;
    contribution and lifetime read it instead of every deal and sale event of the range."""

    PIPELINE = "pipeline"

    day = models.DateField()
    source = models.CharField(max_length=16)
    influenced = models.BooleanField()
    kind = models.CharField(max_length=16)
    amount = models.DecimalField(max_digits=20, decimal_places=2)
    count = models.PositiveIntegerField()
    # Of ``count``, those with an amount above zero (a sale event of a revenue kind with one
    # is a conversion attribution credits: reports.reconciliation).
    positive = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "influenced", "kind"], name="sales_daily_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.source} {self.kind}: {self.amount}"


class CustomerDay(models.Model):
    """One person who was a member of a deal won on one day (reporting time zone), with the
    person's previous such day: "customers in a range" as ``TouchDay`` answers "engaged"."""

    contact_id = models.BigIntegerField()
    day = models.DateField()
    previous_day = models.DateField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["day", "previous_day"], name="customer_day_range"),
            models.Index(fields=["contact_id", "day"], name="customer_day_contact"),
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} won on {self.day}"


class CustomerDayCount(models.Model):
    """``CustomerDay`` counted per day and previous day, cumulatively (PostgreSQL only), as
    ``TouchDayCount`` counts ``TouchDay``."""

    FIRST_EVER = date(1, 1, 1)

    day = models.DateField()
    previous_day = models.DateField()
    people = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "previous_day"], name="customer_day_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.people} after {self.previous_day}"


class FirstTouchHour(models.Model):
    """People first touched on ``day`` (reporting time zone) ``hour`` whole hours after they
    were created (PostgreSQL only): a histogram of ``PersonMilestone``'s spans, from which
    the median time to first touch over any range reads one hour's spans, not all."""

    day = models.DateField()
    hour = models.IntegerField()
    people = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "hour"], name="first_touch_hour_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.people} after {self.hour} h"


class UncreditedSale(models.Model):
    """A conversion an attribution run did not credit (no touch in the lookback, or only
    withdrawn ones), found once per run by the report update (``reports.rollups``), so
    reconciliation reads them instead of searching every sale of its range."""

    run_id = models.BigIntegerField()
    sale_event_id = models.BigIntegerField()
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["run_id", "occurred_at"], name="uncredited_run_time")]

    def __str__(self) -> str:
        return f"sale event {self.sale_event_id} not credited by run {self.run_id}"


class UncreditedMark(models.Model):
    """That ``UncreditedSale`` holds every uncredited conversion of ``run_id`` up to
    ``last_sale_event_id`` (those after it came after the run, so it credited none)."""

    run_id = models.BigIntegerField(unique=True)
    last_sale_event_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"run {self.run_id} up to sale event {self.last_sale_event_id}"


class AttributionChangeCount(models.Model):
    """How many ledger entries that can move a credit (``reports.freshness``) the ledger
    holds up to ``ledger_mark``, counted from its start. Written by the report update with
    each state of the aggregates, so "K changes since" a run is the difference of two rows
    and a count of the few entries around them (``reports.change_counts``)."""

    ledger_mark = models.PositiveBigIntegerField(unique=True)
    changes = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return f"{self.changes} changes up to ledger seq {self.ledger_mark}"
