"""After ``seed_demo`` every page a role works from has something real to show.

The demo is what a newcomer sees first (``make run``), so each dashboard and list
page is fetched as the demo user of its role: 200, and numbers or rows from the
demo data (the attribution tables included, since seed_demo finishes with a
complete attribution run). Built once for the module, rolled back afterwards.
"""

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from buyers.models import BuyerForm
from contacts.models import Campaign, Contact
from handoff.models import ContributionTarget, Deal, Handoff, HandoffStatus, Ruleset
from reports.models import AttributionRun, RunStatus
from reports.views_lists import LISTS

CONTACTS = 80
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[str]:
    """The demo data set (what seed_demo printed), in a transaction rolled back at the end."""
    from io import StringIO

    out = StringIO()
    with (
        django_db_blocker.unblock(),  # type: ignore[attr-defined]
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        call_command("seed_demo", contacts=CONTACTS, stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def _client(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def _year() -> str:
    """The last year, so the numbers do not depend on where in the year the suite runs."""
    today = timezone.localdate()
    return "?" + urlencode({"from": today - timedelta(days=364), "to": today})


def _tables(response) -> dict[str, int]:
    """Each dashboard table's key and how many rows it has."""
    return {
        table.key: table.row_count
        for section in response.context["sections"]
        for table in section.tables
    }


@pytest.mark.django_db
def test_seed_demo_finishes_with_a_complete_attribution_run(demo):
    run = AttributionRun.objects.get()
    assert run.status == RunStatus.COMPLETE
    assert run.trigger == "seed_demo"
    assert run.conversions > 0 and run.touches > 0 and len(run.model_names) == 8
    assert f"Demo attribution (run #{run.pk}" in demo
    assert f"conversions   {run.conversions:>5}" in demo


@pytest.mark.django_db
def test_seed_demo_again_keeps_the_run_and_says_so(demo, capsys):
    call_command("seed_demo", contacts=CONTACTS)
    run = AttributionRun.objects.get()
    assert f"Demo attribution: run #{run.pk} is complete" in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "url_name", "tables"),
    [
        (
            "morgan",
            "dashboard-manager",
            {"contribution", "people", "funnel", "attribution", "models", "campaigns", "lifetime"},
        ),
        ("maria", "dashboard-marketing", {"campaigns", "attribution", "returned", "leakage"}),
        ("sam", "dashboard-sales", {"queue", "deals"}),
    ],
)
def test_every_dashboard_shows_the_demo_numbers(demo, username, url_name, tables):
    client = _client(username)
    # The default period (year to date) answers; the last year has every table filled.
    assert client.get(reverse(url_name)).status_code == 200
    response = client.get(reverse(url_name) + _year())
    assert response.status_code == 200
    rows = _tables(response)
    empty = {key for key in tables if not rows.get(key)}
    assert not empty, f"{url_name}: tables without rows: {empty} (all: {rows})"


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["first_touch", "linear", "w_shaped", "markov", "shapley"])
def test_attribution_has_rows_for_every_model(demo, model):
    response = _client("morgan").get(
        reverse("dashboard-manager") + _year() + "&" + urlencode({"model": model})
    )
    assert response.status_code == 200
    assert _tables(response)["attribution"] > 0


@pytest.mark.django_db
def test_every_list_page_shows_demo_rows(demo):
    contact = Contact.objects.filter(erased_at=None).order_by("id").first()
    campaign = Campaign.objects.order_by("id").first()
    deal = Deal.objects.order_by("-occurred_at").first()
    ruleset = Ruleset.objects.order_by("-version").first()
    pending = Handoff.objects.filter(status=HandoffStatus.PENDING).order_by("due_at").first()
    returned = (
        Handoff.objects.filter(status__in=(HandoffStatus.REJECTED, HandoffStatus.EXPIRED))
        .order_by("-id")
        .first()
    )
    target = ContributionTarget.objects.order_by("-period").first()
    form = BuyerForm.objects.order_by("id").first()
    assert contact and campaign and deal and ruleset and pending and returned and target
    assert form
    pages = [
        ("maria", reverse("contacts"), str(contact.email)),
        ("maria", reverse("touches"), "Log a touch"),
        ("maria", reverse("campaigns"), campaign.name),
        ("maria", reverse("channels"), "webinar"),
        ("maria", reverse("touch-import"), "csv"),
        ("maria", reverse("buyer_forms"), form.title),
        # The demo form's page: its submissions per campaign and the snippets to embed.
        ("maria", reverse("buyer_form_detail", args=[form.pk]), f"/f/{form.slug}/embed/"),
        ("maria", reverse("handoffs-returned"), reverse("contact", args=[returned.contact_id])),
        # The queue, oldest due first, as the manager sees it (a rep sees theirs and the
        # unassigned ones).
        ("morgan", reverse("handoff-queue"), reverse("contact", args=[pending.contact_id])),
        ("sam", reverse("handoff-queue"), "Accept"),
        ("sam", reverse("deals"), deal.name),
        ("morgan", reverse("deals"), deal.name),
        ("morgan", reverse("rulesets"), ruleset.name),
        ("morgan", reverse("targets"), target.period),
        ("morgan", reverse("ledger"), "Attribution run"),
        ("priya", reverse("ledger"), "Attribution run"),
        ("priya", reverse("contacts"), str(contact.email)),
    ]
    missing = []
    for username, url, text in pages:
        response = _client(username).get(url)
        assert response.status_code == 200, (username, url, response.status_code)
        if text.lower() not in response.content.decode().lower():
            missing.append((username, url, text))
    assert not missing, f"pages without their demo rows: {missing}"


@pytest.mark.django_db
def test_every_leak_list_answers_and_the_demo_has_leaks(demo):
    client = _client("morgan")
    totals = {}
    for slug in LISTS:
        response = client.get(reverse("report-leak-list", args=[slug]) + _year())
        assert response.status_code == 200, slug
        totals[slug] = response.context["total"]
    # Not every kind of leak happens in a small demo year; the lists still have people.
    assert sum(totals.values()) > 0, totals
