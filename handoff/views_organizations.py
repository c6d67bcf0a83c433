"""Organizations: a list with people, deals and revenue, and a page per organization."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from contacts import selectors as contact_selectors
from contacts.models import Organization
from leadrecord.roles import Role, user_has_role
from leadrecord.tables import csv_response, table_configure, wants_csv
from leadrecord.views_access import role_required

from . import selectors
from .lists import OrganizationFilter, OrganizationTable

ORGANIZATION_PAGE_ROLES = contact_selectors.CONTACT_PAGE_ROLES
# Deals and revenue are the reports' readers' (the privacy officer sees the people).
MONEY_ROLES = (Role.MARKETER, Role.SALES_REP, Role.MANAGER)
DEAL_ROLES = (Role.SALES_REP, Role.MANAGER)
TOUCH_LIST_ROLES = (Role.MARKETER, Role.MANAGER)
SHOWN = 20  # rows of each kind on an organization's page; the full list is a link away


@role_required(*ORGANIZATION_PAGE_ROLES)
@require_GET
def organization_list(request: HttpRequest) -> HttpResponseBase:
    filterset = OrganizationFilter(request.GET, queryset=selectors.organizations_listed())
    valid = filterset.is_valid()
    table = OrganizationTable(
        filterset.qs if valid else Organization.objects.none(),
        exclude=() if user_has_role(request.user, *MONEY_ROLES) else ("deal_count", "revenue"),
    )
    if valid and wants_csv(request):
        return csv_response(table_configure(request, table), "organizations.csv")
    return render(
        request,
        "handoff/organization_list.html",
        {
            "filter_form": filterset.form,
            "filters_valid": valid,
            "table": table_configure(request, table),
        },
        status=200 if valid else 400,
    )


@role_required(*ORGANIZATION_PAGE_ROLES)
@require_GET
def organization_detail(request: HttpRequest, pk: int) -> HttpResponse:
    organization = get_object_or_404(selectors.organizations_listed(), pk=pk)
    people = contact_selectors.contacts_for(request.user).filter(organization=organization)
    touches = contact_selectors.touches_listed().filter(contact__organization=organization)
    sees_money = user_has_role(request.user, *MONEY_ROLES)
    deals = selectors.organization_deals(organization) if sees_money else None
    return render(
        request,
        "handoff/organization_detail.html",
        {
            "organization": organization,
            "people": people.order_by("last_name", "first_name", "id")[:SHOWN],
            "people_count": people.count(),
            "touches": touches.order_by("-occurred_at", "-id")[:SHOWN],
            "touches_count": touches.count(),
            "deals": deals[:SHOWN] if deals is not None else None,
            "sees_money": sees_money,
            "links_deals": user_has_role(request.user, *DEAL_ROLES),
            "links_touches": user_has_role(request.user, *TOUCH_LIST_ROLES),
        },
    )
