"""The attribution method page: what each model computes, linked from every attribution
table. Its text is in ``templates/reports/attribution_method.html`` (and, for readers of
the repository, ``docs/attribution-method.md``); a test checks its worked example
against the engine, number by number."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from leadrecord.roles import Role
from leadrecord.views_access import role_required


@role_required(Role.MARKETER, Role.SALES_REP, Role.MANAGER)
@require_GET
def attribution_method(request: HttpRequest) -> HttpResponse:
    return render(request, "reports/attribution_method.html")
