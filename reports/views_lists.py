"""The lists behind the leakage numbers: each ``Leak.url`` opens one of these pages.

They run the very queries the counts come from (``reports.metrics.LEAK_QUERIES``), so a
list always holds as many rows as its number says.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from handoff.selectors import handoff_audiences_known_to
from leadrecord.dates import validate_day_in_range
from leadrecord.roles import Role
from leadrecord.views_access import role_required

from . import metrics

READERS = (Role.MARKETER, Role.SALES_REP, Role.MANAGER)
ROWS_PER_PAGE = 50

# The page's slug -> (the leak's key, what the rows are).
LISTS = {
    "qualified-not-handed-off": ("qualified_not_handed_off", "people"),
    "handoffs-expired": ("handoffs_expired", "people"),
    "rejected-not-reengaged": ("rejected_not_reengaged", "people"),
    "deals-stalled": ("deals_stalled", "deals"),
}
EXPLANATIONS = {
    "qualified_not_handed_off": "People qualified in the range who had never been handed off "
    "by its last day.",
    "handoffs_expired": "People whose handoff ran past the sales SLA in the range.",
    "rejected_not_reengaged": "People sales rejected in the range (not as duplicates) with no "
    "touch and no new handoff since, by its last day.",
    "deals_stalled": f"Deals open at the end of the last day, created {metrics.STALLED_AFTER_DAYS} "
    "days or more before it, without a sale event.",
}


class LeakRangeForm(forms.Form):
    """``from`` and ``to`` as in the report API: days in the reporting time zone, both
    included; ``to`` defaults to today and ``from`` to the first day of its quarter."""

    to = forms.DateField(required=False, validators=[validate_day_in_range])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ``from`` is a Python keyword, so the field is added by name.
        self.fields["from"] = forms.DateField(required=False, validators=[validate_day_in_range])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        start, end = metrics.range_or_default(cleaned.get("from"), cleaned.get("to"))
        if start > end:
            self.add_error("to", "The last day comes before the first.")
        cleaned["from"], cleaned["to"] = start, end
        return cleaned


@role_required(*READERS)
@require_GET
def leak_list(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in LISTS:
        raise Http404("No such list.")
    key, kind = LISTS[slug]
    label = dict(metrics.LEAKS)[key]
    form = LeakRangeForm(request.GET)
    context: dict[str, Any] = {
        "form": form,
        "label": label,
        "explanation": EXPLANATIONS[key],
        "kind": kind,
        "slug": slug,
    }
    if not form.is_valid():
        return render(request, "reports/lists/leak.html", context, status=400)
    start, end = form.cleaned_data["from"], form.cleaned_data["to"]
    rows = metrics.LEAK_QUERIES[key](start, end, handoff_audiences_known_to(request.user))
    if kind == "people":
        rows = rows.select_related("organization").order_by("id")
    else:
        rows = rows.select_related("organization", "owner").order_by("occurred_at", "id")
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    context.update({"page": page, "start": start, "end": end, "total": page.paginator.count})
    return render(request, "reports/lists/leak.html", context)


urlpatterns = [
    path("reports/lists/<slug:slug>/", leak_list, name="report-leak-list"),
]
