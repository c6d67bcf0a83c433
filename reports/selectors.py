"""Read-side queries for attribution runs and their credits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, F, Sum

from contacts.models import Campaign, Channel

from .attribution_credits import UNALLOCATED_CHANNEL_ID, UNALLOCATED_KEY
from .models import AttributionDaily, AttributionRun, RunStatus
from .per_state import run_read
from .snapshot import snapshot_remember

GROUPINGS = ("channel", "campaign", "team")


def run_latest_complete() -> AttributionRun | None:
    """The run readers see: the newest complete one (an unfinished newer run stays hidden).
    Read once per reader's snapshot (``reports.snapshot``)."""
    return snapshot_remember(
        "run_latest_complete",
        lambda: AttributionRun.objects.filter(status=RunStatus.COMPLETE).order_by("-id").first(),
    )


def model_unavailable_reason(run: AttributionRun, model: str) -> str | None:
    """Why ``run`` has no credits for ``model`` (None when it has them)."""
    reason = (run.models_unavailable or {}).get(model)
    if reason:
        return f"Attribution run #{run.pk} could not compute {model}: {reason}"
    if model not in run.model_names:
        return f"Attribution run #{run.pk} did not compute {model}."
    return None


@dataclass(frozen=True)
class CreditRow:
    key: str
    credit: float
    conversions: float


def attribution_rows(
    run: AttributionRun,
    *,
    model: str,
    group_by: str,
    start: date | None = None,
    end: date | None = None,
) -> list[CreditRow]:
    """Credit by channel, campaign or team for one model, over conversions from ``start`` to
    ``end`` (inclusive days in the reporting time zone), largest first."""
    daily = AttributionDaily.objects.filter(run=run, model=model)
    if start is not None:
        daily = daily.filter(day__gte=start)
    if end is not None:
        daily = daily.filter(day__lte=end)
    field = {"channel": "channel_id", "campaign": "campaign_id", "team": "team"}[group_by]
    # The run's own rows: once per process (``reports.per_state``).
    sums = run_read(
        run,
        ("credit rows", model, group_by, start, end),
        lambda: tuple(
            daily.values(key=F(field))
            .annotate(credit=Sum("credit"), conversions=Sum("conversions"), n=Count("id"))
            .order_by()
        ),
    )
    names = _names(group_by)
    rows = [
        CreditRow(
            key=names.get(item["key"], str(item["key"])) if item["key"] is not None else "(none)",
            credit=round(float(item["credit"] or 0.0), 2),
            conversions=round(float(item["conversions"] or 0.0), 4),
        )
        for item in sums
    ]
    return sorted(rows, key=lambda row: (-row.credit, row.key))


def channel_keys() -> dict[object, str]:
    """Each channel's key by id, with the unallocated share's (read once per reader's
    snapshot: a page's attribution tables each name their channels)."""
    return {
        UNALLOCATED_CHANNEL_ID: UNALLOCATED_KEY,
        **snapshot_remember("channel keys", lambda: dict(Channel.objects.values_list("id", "key"))),
    }


def _names(group_by: str) -> dict[object, str]:
    if group_by == "channel":
        return channel_keys()
    if group_by == "campaign":
        return dict(Campaign.objects.values_list("id", "name"))
    return {}
