"""Project-level pages: the home page, the first-run guide and the record (ledger) page."""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

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


# --- the first-run guide ---------------------------------------------------------------


@dataclass(frozen=True)
class GuideStep:
    title: str
    text: str
    url_name: str = ""  # the page the step happens on, when it has one of its own
    query: str = ""  # appended to the page's URL (a filter that finds the right rows)
    link: str = ""  # the link's words
    code: str = ""  # a command or request to copy


@dataclass(frozen=True)
class GuideSection:
    role: str
    title: str
    job: str
    steps: tuple[GuideStep, ...]


EVENTS_EXAMPLE = """\
curl -s -H "Authorization: Token $TOKEN" -H "Content-Type: application/json" \\
  -H "Idempotency-Key: crm-batch-0001" http://127.0.0.1:8000/api/v1/events/ -d '{"events": [
  {"type": "touch", "source_system": "crm", "external_id": "t-1",
   "occurred_at": "2026-11-02T10:00:00+01:00", "channel": "webinar", "kind": "webinar_attended",
   "contact": {"email": "ada@example.com",
               "organization": {"name": "Example", "domain": "example.com"}}}]}'
# {"created": 1, "duplicate": 0, "rejected": 0,
#  "results": [{"external_id": "t-1", "status": "created", "id": 1843, "errors": []}]}"""

# One section per role, in the order the work flows: marketing finds and hands off
# people, sales works them, managers set the rules and read the results, the privacy
# officer answers the people themselves, integrations feed the record.
GUIDE = (
    GuideSection(
        Role.MARKETER,
        "Marketing",
        "Record what people do and say, and hand them to sales when they say so.",
        (
            GuideStep(
                "Log a touch",
                "Name the person (email or search), the channel, the campaign and when it "
                "happened; sending the form twice records it once.",
                "touches",
                link="Log a touch",
            ),
            GuideStep(
                "Import a CSV of touches",
                "Columns email, channel, campaign, kind, occurred_at, external_id. Every row is "
                "checked and previewed first; then import all or nothing, or only the valid "
                "rows. A file sent again gives duplicates, not new touches.",
                "touch-import",
                link="Upload a CSV",
            ),
            GuideStep(
                "Hand off a person who agreed to talk to sales",
                "Open a qualified person and press Hand off to sales. The buyer's say-so "
                "comes first: a granted sales_contact consent or the stage ready_to_talk that "
                "they declared themselves (a stage told to sales alone is handed off by the "
                "system), or the handoff is refused.",
                "contacts",
                query="?qualified=true",
                link="Qualified people",
            ),
            GuideStep(
                "Read the handoffs sales returned",
                "Rejected and expired handoffs come back with their reason and note; nurture "
                "the person and hand them off again later.",
                "handoffs-returned",
                link="Returned handoffs",
            ),
            GuideStep(
                "See what your campaigns brought",
                "Campaign cost against attributed revenue, attribution by channel or campaign, "
                "and where people leak.",
                "dashboard-marketing",
                link="Marketing dashboard",
            ),
        ),
    ),
    GuideSection(
        Role.SALES_REP,
        "Sales",
        "Answer every handoff within the agreed time, then record deals and their sales.",
        (
            GuideStep(
                "Work your queue",
                "Oldest due first, each marked on time, due soon or overdue. Past the SLA a "
                "handoff expires and goes back to marketing.",
                "handoff-queue",
                link="Your queue",
            ),
            GuideStep(
                "Accept or reject",
                "Accept to take ownership; reject with a reason (not a fit, no budget, bad "
                "timing, duplicate, unreachable, other) and a note marketing will read.",
                "handoff-queue",
                link="Accept or reject in the queue",
            ),
            GuideStep(
                "Create a deal from an accepted handoff",
                "Under the queue, your accepted handoffs have Create a deal: the person and "
                "the organization are filled in. Add the buying group and the amount; the "
                "deal's source (marketing or sales) is derived, with its reason.",
                "deal-new",
                link="New deal",
            ),
            GuideStep(
                "Record the win",
                "Open the deal and record a sale event: won with its amount (once), or lost; "
                "later expansion, renewal or churn.",
                "deals",
                link="Your deals",
            ),
            GuideStep(
                "Your dashboard",
                "Who is waiting for you and the deals you own.",
                "dashboard-sales",
                link="Sales dashboard",
            ),
        ),
    ),
    GuideSection(
        Role.MANAGER,
        "Management",
        "Set the ground rules both teams agreed, then read who contributed what.",
        (
            GuideStep(
                "Agree the rules",
                "A ruleset holds the points, the MQL threshold, the sales SLA, the sourcing "
                "window and the attribution lookback. Edit a draft, compare it with the "
                "active one and activate it; the old one retires unchanged.",
                "rulesets",
                link="Rulesets",
            ),
            GuideStep(
                "Set the quarter's target",
                "The share of pipeline marketing should source, per quarter.",
                "targets",
                link="Targets",
            ),
            GuideStep(
                "Read the dashboard",
                "Pipeline and revenue by source against the target, the funnel and its "
                "leakage, attribution under eight models, campaign returns and lifetime "
                "revenue; every table downloads as CSV.",
                "dashboard-manager",
                link="Management dashboard",
            ),
            GuideStep(
                "Check the record",
                "Every change, who made it and when, on the append-only, hash-chained ledger "
                "(manage.py verify_ledger checks the chain).",
                "ledger",
                link="The record",
            ),
        ),
    ),
    GuideSection(
        Role.PRIVACY_OFFICER,
        "Privacy",
        "Answer the people themselves: what is held about them, and erasure on request.",
        (
            GuideStep(
                "Find the person",
                "Search by name or email.",
                "contacts",
                link="Contacts",
            ),
            GuideStep(
                "Subject access",
                "On the person's page, Export gives everything held about them (every "
                "disclosure, whatever its audience) as JSON; the export itself is recorded.",
                "contacts",
                link="Open a person, then Export",
            ),
            GuideStep(
                "Erasure",
                "On the person's page, Erase empties their data everywhere and destroys their "
                "key, so the ledger keeps its chain and its counts but nobody can read their "
                "values again. It cannot be undone.",
                "contacts",
                link="Open a person, then Erase",
            ),
            GuideStep(
                "See it on the record",
                "The export and the erasure are ledger entries like every other change.",
                "ledger",
                link="The record",
            ),
        ),
    ),
    GuideSection(
        Role.INTEGRATION,
        "Integration",
        "Other systems (a CRM, marketing automation) write to the record through the API.",
        (
            GuideStep(
                "Read the API docs",
                "Every endpoint with its roles, request and response examples; the OpenAPI "
                "3 schema is beside them.",
                "api-docs",
                link="API docs",
            ),
            GuideStep(
                "Get a token",
                "An administrator creates the system's user in the integration role and "
                "issues it a token, shown only then; send it as Authorization: Token <key>. "
                "It expires after 90 days (API_TOKEN_TTL_DAYS); issue_token NAME --rotate "
                "issues the next one and revokes the others.",
                code="python manage.py add_user erp --role integration\n"
                "TOKEN=$(python manage.py issue_token erp)",
            ),
            GuideStep(
                "Send events",
                "POST events/ takes 1 to 1,000 touches, consents, disclosures and sales in one "
                "request, answers per event (created, duplicate or rejected with its errors) "
                "and stores each (source_system, external_id) once; an Idempotency-Key makes a "
                "retry safe.",
                code=EVENTS_EXAMPLE,
            ),
        ),
    ),
)


def guide_sections_for(roles: frozenset[str]) -> list[GuideSection]:
    """Every section, the reader's own roles' first (in the guide's order)."""
    own = [section for section in GUIDE if section.role in roles]
    return own + [section for section in GUIDE if section.role not in roles]


@login_required
def guide(request: HttpRequest) -> HttpResponse:
    roles = user_roles(request.user)
    sections = [
        {
            "role": section.role,
            "title": section.title,
            "job": section.job,
            "own": section.role in roles,
            "steps": [
                {
                    "title": step.title,
                    "text": step.text,
                    "url": reverse(step.url_name) + step.query if step.url_name else "",
                    "link": step.link,
                    "code": step.code,
                }
                for step in section.steps
            ],
        }
        for section in guide_sections_for(roles)
    ]
    return render(request, "guide.html", {"sections": sections})
