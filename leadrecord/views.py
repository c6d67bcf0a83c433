"""Project-level pages: the home page, the first-run guide and the record (ledger) page."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .filters import LedgerFilter
from .models import LedgerEntry
from .roles import Role, user_roles
from .selectors import ledger_entries_latest_first
from .tables import LedgerTable, csv_response, table_configure, wants_csv
from .views_access import role_required


@role_required(Role.MANAGER, Role.PRIVACY_OFFICER)
@require_GET
def ledger_page(request: HttpRequest) -> HttpResponseBase:
    """The record, filtered, sorted and paged; ``?format=csv`` downloads the filtered rows."""
    filterset = LedgerFilter(request.GET, queryset=ledger_entries_latest_first())
    valid = filterset.is_valid()
    table = LedgerTable(filterset.qs if valid else LedgerEntry.objects.none())
    if valid and wants_csv(request):
        return csv_response(table_configure(request, table), "record.csv")
    return render(
        request,
        "ledger.html",
        {
            "filter_form": filterset.form,
            "filters_valid": valid,
            "table": table_configure(request, table),
        },
        status=200 if valid else 400,
    )


# --- the first-run guide ---------------------------------------------------------------

# One section per role, in the order the work flows: marketing finds and hands off
# people, sales works them, managers set the rules and read the results, the privacy
# officer answers the people themselves, integrations feed the record. Each section's
# copy is the template guide/<role>.html.
GUIDE_ROLES = (
    Role.MARKETER,
    Role.SALES_REP,
    Role.MANAGER,
    Role.PRIVACY_OFFICER,
    Role.INTEGRATION,
)


def guide_roles_for(roles: frozenset[str]) -> list[Role]:
    """Every role's section, the reader's own first (in the guide's order)."""
    own = [role for role in GUIDE_ROLES if role in roles]
    return own + [role for role in GUIDE_ROLES if role not in roles]


@login_required
def guide(request: HttpRequest) -> HttpResponse:
    roles = user_roles(request.user)
    sections = [
        {"role": role, "own": role in roles, "template": f"guide/{role}.html"}
        for role in guide_roles_for(roles)
    ]
    return render(request, "guide.html", {"sections": sections})
