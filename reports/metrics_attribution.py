"""Attribution side by side (every model's credit by a grouping) and campaign ROI, read
from the latest complete run's daily credits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import (
    F,
    Sum,
)

from contacts.models import Campaign

from .models import (
    AttributionDaily,
    AttributionModel,
)
from .per_state import run_read
from .report_cache import report_cached
from .selectors import channel_keys, run_latest_complete


@dataclass(frozen=True)
class ModelRow:
    key: str
    credits: dict[str, float] = field(default_factory=dict)


GROUPINGS = ("channel", "campaign", "team")
_GROUP_FIELDS = {"channel": "channel_id", "campaign": "campaign_id", "team": "team"}


def _group_names(group_by: str) -> dict[Any, str]:
    if group_by == "channel":
        return channel_keys()
    if group_by == "campaign":
        return dict(Campaign.objects.values_list("id", "name"))
    return {}


@report_cached
def attribution_by_model(start: date, end: date, group_by: str) -> list[ModelRow]:
    """Credit per channel, campaign or team under each of the eight models, from the latest
    complete run, for conversions in the range; largest linear credit first."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}")
    run = run_latest_complete()
    if run is None:
        return []
    daily = AttributionDaily.objects.filter(run=run, day__gte=start, day__lte=end)
    names = _group_names(group_by)
    table: dict[str, dict[str, float]] = {}
    # The run's own rows: once per process (``reports.per_state``).
    credits = run_read(
        run,
        ("credit by model", group_by, start, end),
        lambda: tuple(
            daily.values("model", key=F(_GROUP_FIELDS[group_by]))
            .annotate(credit=Sum("credit"))
            .order_by()
        ),
    )
    for item in credits:
        key = "(none)" if item["key"] is None else names.get(item["key"], str(item["key"]))
        table.setdefault(key, {model: 0.0 for model in AttributionModel.values})
        table[key][item["model"]] += float(item["credit"] or 0.0)
    rows = [
        ModelRow(key=key, credits={model: round(value, 2) for model, value in credits.items()})
        for key, credits in table.items()
    ]
    return sorted(rows, key=lambda row: (-row.credits[AttributionModel.LINEAR], row.key))


@dataclass(frozen=True)
class CampaignRoi:
    campaign_id: int
    name: str
    channel: str
    cost: Decimal
    attributed_revenue: float
    roi: float | None


@report_cached
def campaign_roi(start: date, end: date, model: str) -> list[CampaignRoi]:
    """Every campaign's cost (its whole recorded cost) against the revenue ``model`` credits
    it with for conversions in the range; ``roi`` = (attributed - cost) / cost, ``None``
    for a campaign that cost nothing. Largest attributed revenue first."""
    if model not in AttributionModel.values:
        raise ValueError(f"model must be one of {', '.join(AttributionModel.values)}")
    run = run_latest_complete()
    attributed: dict[int | None, float] = {}
    if run is not None:
        daily = AttributionDaily.objects.filter(run=run, day__gte=start, day__lte=end)
        attributed = {
            campaign_id: float(credit or 0.0)
            for campaign_id, credit in run_read(
                run,
                ("credit by campaign", model, start, end),
                lambda: tuple(
                    daily.filter(model=model, campaign_id__isnull=False)
                    .values("campaign_id")
                    .annotate(credit=Sum("credit"))
                    .values_list("campaign_id", "credit")
                    .order_by()
                ),
            )
        }
    rows = []
    for campaign_id, name, channel, cost in Campaign.objects.values_list(
        "id", "name", "channel__key", "cost"
    ):
        revenue = round(attributed.get(campaign_id, 0.0), 2)
        rows.append(
            CampaignRoi(
                campaign_id=campaign_id,
                name=name,
                channel=channel,
                cost=cost,
                attributed_revenue=revenue,
                roi=round((revenue - float(cost)) / float(cost), 4) if cost > 0 else None,
            )
        )
    return sorted(rows, key=lambda row: (-row.attributed_revenue, row.name))
