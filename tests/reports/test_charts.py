"""A chart with more categories than it has room for keeps the largest by what it shows."""

import pytest
from django.core.cache import cache

from reports.charts import CHART_CATEGORIES_MAX, Series, bar_chart

pytestmark = [
    pytest.mark.filterwarnings("ignore:PluginImportFixer.find_spec:ImportWarning"),
]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def _campaigns(count: int) -> tuple[list[str], list[int], list[int]]:
    """Ordered as the dashboard orders them: largest revenue first."""
    labels = [f"Campaign {index}" for index in range(count)]
    cost = [200 - index for index in range(count)]
    revenue = [2000 - 10 * index for index in range(count)]
    return labels, cost, revenue


def test_a_large_cost_with_no_revenue_is_among_the_largest_shown():
    labels, cost, revenue = _campaigns(18)
    labels[-1], cost[-1], revenue[-1] = "Trade show", 41_800, 0  # last by revenue
    chart = bar_chart(
        title="Campaigns",
        labels=labels,
        series=[Series("Revenue", revenue), Series("Cost", cost)],
    )
    assert chart.title == f"Campaigns (largest {CHART_CATEGORIES_MAX} of 18 by revenue or cost)"
    assert "Trade show: Revenue 0.00, Cost 41,800.00" in chart.summary
    # The smallest by both measures are the ones left out.
    assert "Campaign 0:" in chart.summary and "Campaign 16:" not in chart.summary


def test_a_stacked_chart_keeps_the_largest_totals_in_their_order():
    labels = [f"Group {index}" for index in range(14)]
    first = [1] * 14
    second = [1] * 14
    first[3], second[3] = 50, 50
    second[13] = 90  # given last, among the largest
    chart = bar_chart(
        title="Credit",
        labels=labels,
        series=[Series("Marketing", first), Series("Sales", second)],
        stacked=True,
        value_format="count",
    )
    summary = chart.summary
    assert summary.index("Group 3:") < summary.index("Group 13:")
    assert summary.count("Group ") == CHART_CATEGORIES_MAX


def test_a_chart_that_fits_keeps_every_category_and_its_title():
    labels, cost, _revenue = _campaigns(5)
    chart = bar_chart(title="Campaigns", labels=labels, series=[Series("Cost", cost)])
    assert chart.title == "Campaigns"
    assert all(label in chart.summary for label in labels)
