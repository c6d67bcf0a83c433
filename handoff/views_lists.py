"""The contact and deal lists: filtered, sorted, paged, counted, and as CSV (``?format=csv``)
with the same rows the filters give."""

from __future__ import annotations

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from contacts import selectors as contact_selectors
from contacts.models import Contact
from leadrecord.roles import Role, user_has_role
from leadrecord.tables import csv_response, table_configure, wants_csv
from leadrecord.views_access import role_required

from . import selectors
from .lists import ContactPageFilter, ContactTable, DealFilter, DealTable
from .models import Deal

DEAL_ROLES = (Role.SALES_REP, Role.MANAGER)
CONTACT_WRITERS = (Role.MARKETER, Role.SALES_REP, Role.MANAGER)


@role_required(*contact_selectors.CONTACT_PAGE_ROLES)
@require_GET
def contact_list(request: HttpRequest) -> HttpResponseBase:
    filterset = ContactPageFilter(
        request.GET, queryset=contact_selectors.contacts_for(request.user), request=request
    )
    valid = filterset.is_valid()
    table = ContactTable(filterset.qs if valid else Contact.objects.none())
    if valid and wants_csv(request):
        return csv_response(table_configure(request, table), "contacts.csv")
    return render(
        request,
        "contacts/list.html",
        {
            "filter_form": filterset.form,
            "filters_valid": valid,
            "table": table_configure(request, table),
            "can_write": user_has_role(request.user, *CONTACT_WRITERS),
        },
        status=200 if valid else 400,
    )


@role_required(*DEAL_ROLES)
@require_GET
def deal_list(request: HttpRequest) -> HttpResponseBase:
    filterset = DealFilter(request.GET, queryset=selectors.deals_listed(), request=request)
    valid = filterset.is_valid()
    deals = filterset.qs if valid else Deal.objects.none()
    table = DealTable(deals)
    if valid and wants_csv(request):
        return csv_response(table_configure(request, table), "deals.csv")
    return render(
        request,
        "handoff/deal_list.html",
        {
            "filter_form": filterset.form,
            "filters_valid": valid,
            "table": table_configure(request, table),
            "total_amount": selectors.deals_amount_total(deals),
        },
        status=200 if valid else 400,
    )
