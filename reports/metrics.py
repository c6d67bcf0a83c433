"""The numbers behind the reports and dashboards: contribution, funnel, leakage, attribution
side by side, campaign ROI and lifetime revenue.

Every function takes inclusive ``start`` and ``end`` days in the reporting time zone
(``settings.TIME_ZONE``): a moment belongs to the range when its local day is between
them, both included. Results are frozen dataclasses of plain values: ``Decimal`` for
money, ``int`` for counts, ``float`` for attribution credit, conversion rates and days.

Definitions (docs/product.md, promises 1 and 5-8):

- A deal's source is its ``source_override`` when set, else its ``derived_source``.
- Pipeline: the amounts of deals created (``Deal.occurred_at``) in the range.
- Revenue: ``won`` + ``expansion`` + ``renewal`` less ``churn`` sale events in the range,
  each counted for the source of its deal.
- ``marketing_share`` = marketing-sourced / total, ``None`` when the total is not positive.
- ``target_share``: the ``ContributionTarget`` of the quarter holding ``end``, or ``None``.
- Influenced pipeline and revenue: the same sums over deals marked ``influenced``.
- People are distinct persons (a merged contact counts once, as the one it was merged
  into; an erased person still counts, so totals survive erasure, principle 10):
  ``contacts`` created by ``end``; ``engaged``, with a touch in the range;
  ``qualified``, with a qualification (to qualified) in the range; ``handed_off``, with a
  handoff created in the range; ``accepted``, with a handoff accepted in the range;
  ``customers``, members of deals with a ``won`` event in the range.
- Funnel: those six stages in that order; ``conversion_to_next`` is the next stage's
  people over this one's, both counted in the range (a period view, not a cohort);
  ``median_days_in_stage``, over the people who left the stage in the range: creation to
  first touch, first touch to first qualification, first qualification to first handoff,
  handoff to decision, first acceptance to first won deal. Leaks: see ``LEAK_QUERIES``
  (each count is the ``.count()`` of the query its list page shows).

Speed: money comes straight from deals and sale events (indexed by time); people counts
and the first-touch times come from the aggregates in ``reports.aggregates``, rebuilt by
the nightly attribution run, with whatever was written or merged since counted live on
top, so every number is exact (nothing is sampled or estimated).

The numbers live in modules by concept (``reports.periods``, ``metrics_people``,
``metrics_contribution``, ``metrics_funnel``, ``metrics_attribution``); this module names
them all in one place for the report pages and APIs.
"""

from __future__ import annotations

from .metrics_attribution import (
    GROUPINGS,
    CampaignRoi,
    ModelRow,
    attribution_by_model,
    campaign_roi,
)
from .metrics_contribution import (
    SHARE_PLACES,
    ZERO,
    Contribution,
    Influenced,
    LifetimeRow,
    SourceSplit,
    contribution,
    lifetime,
    target_share_for,
)
from .metrics_funnel import (
    LEAK_QUERIES,
    LEAKS,
    LIST_PATH,
    SECONDS_PER_DAY,
    STAGES,
    STALLED_AFTER_DAYS,
    Funnel,
    Leak,
    LeakQuery,
    Stage,
    deals_stalled,
    funnel,
    handoffs_expired,
    leak_url,
    leakage,
    median_days_in_stage,
    qualified_not_handed_off,
    rejected_not_reengaged,
)
from .metrics_people import People, people
from .periods import (
    day_start,
    quarter_first_day,
    quarter_of,
    range_moments,
    range_or_default,
    reporting_zone,
)

__all__ = [
    "GROUPINGS",
    "LEAKS",
    "LEAK_QUERIES",
    "LIST_PATH",
    "SECONDS_PER_DAY",
    "SHARE_PLACES",
    "STAGES",
    "STALLED_AFTER_DAYS",
    "ZERO",
    "CampaignRoi",
    "Contribution",
    "Funnel",
    "Influenced",
    "Leak",
    "LeakQuery",
    "LifetimeRow",
    "ModelRow",
    "People",
    "SourceSplit",
    "Stage",
    "attribution_by_model",
    "campaign_roi",
    "contribution",
    "day_start",
    "deals_stalled",
    "funnel",
    "handoffs_expired",
    "leak_url",
    "leakage",
    "lifetime",
    "median_days_in_stage",
    "people",
    "qualified_not_handed_off",
    "quarter_first_day",
    "quarter_of",
    "range_moments",
    "range_or_default",
    "rejected_not_reengaged",
    "reporting_zone",
    "target_share_for",
]
