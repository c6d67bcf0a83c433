"""Project-level pages: the home page and the record (ledger) page."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .roles import Role, user_roles
from .selectors import ledger_entries_latest_first
from .views_access import role_required


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"roles": sorted(user_roles(request.user))})


@role_required(Role.MANAGER, Role.PRIVACY_OFFICER)
def ledger_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(ledger_entries_latest_first(), 50).get_page(request.GET.get("page"))
    return render(request, "ledger.html", {"page": page})
