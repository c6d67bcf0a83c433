"""The attribution method page: its worked example is what the engine computes, number by
number; every attribution table links to it; a model a run could not compute is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reports.attribution import Touch, channel_weights, engine_input_from_lists, model_split
from reports.attribution.markov import markov_removal_effects
from reports.attribution.paths import ChannelPaths, ConvertingPaths
from reports.models import AttributionModel, AttributionRun, RunStatus

DAY = 86_400.0
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "templates" / "reports" / "attribution_method.html"
DOCS = ROOT / "docs" / "attribution-method.md"

# The example: deal 1 won for 300 (email, webinar, sales_call), deal 2 won for 100
# (email, sales_call), deal 3 lost (webinar), deal 4 lost (referral, email).
EXPECTED_TOUCH_CREDITS = {
    "first_touch": [300, 0, 0, 100, 0],
    "last_touch": [0, 0, 300, 0, 100],
    "linear": [100, 100, 100, 50, 50],
    "position_based": [120, 60, 120, 50, 50],
    "time_decay": [90.28, 99.67, 110.05, 47.53, 52.47],
    "w_shaped": [225, 37.5, 37.5, 75, 25],
    "markov": [82.5, 80, 110, 37.5, 50],
    "shapley": [100, 100, 100, 50, 50],
}


def example() -> tuple[ConvertingPaths, ChannelPaths, list[str]]:
    converting, nonconverting, names = engine_input_from_lists(
        [
            [Touch("email", 0.0), Touch("webinar", DAY), Touch("sales_call", 2 * DAY)],
            [Touch("email", 0.0), Touch("sales_call", DAY)],
        ],
        [300.0, 100.0],
        [["webinar"], ["referral", "email"]],
        converted_at=[3 * DAY, 2 * DAY],
    )
    return converting, nonconverting, names


def test_the_worked_example_is_what_the_engine_computes() -> None:
    converting, nonconverting, names = example()
    assert names == ["email", "referral", "sales_call", "webinar"]
    effects = markov_removal_effects(
        converting.channel_paths(), nonconverting, len(names), converting.value
    )
    assert effects.tolist() == pytest.approx([0.75, 0.25, 1.0, 0.5], rel=1e-12)
    weights = channel_weights("markov", converting, nonconverting)
    assert weights.tolist() == pytest.approx([120.0, 40.0, 160.0, 80.0], rel=1e-12)
    value_of_touch = np.repeat(converting.value, converting.lengths)
    for model, expected in EXPECTED_TOUCH_CREDITS.items():
        split = model_split(model, converting, nonconverting)
        credits = split.touch * value_of_touch
        # The page gives money to the cent.
        assert credits.tolist() == pytest.approx(expected, abs=0.005), model
        unallocated = (split.unallocated * converting.value).tolist()
        if model == "markov":
            assert unallocated == pytest.approx([27.5, 12.5], rel=1e-9)
            assert split.unallocated_channel.tolist() == pytest.approx([0, 40.0, 0, 0])
        else:
            assert unallocated == [0.0, 0.0], model


@pytest.mark.parametrize("text", [TEMPLATE, DOCS], ids=["page", "docs"])
def test_the_method_text_gives_the_example_numbers(text: Path) -> None:
    content = " ".join(text.read_text().split())
    for phrase in (
        "email 120, referral 40, sales_call 160, webinar 80",
        "deal 1: email 82.50, webinar 80.00, sales_call 110.00, unallocated 27.50",
        "deal 2: email 37.50, sales_call 50.00, unallocated 12.50",
        "removal effect 0.75",
        "email 90.28, webinar 99.67, sales_call 110.05; email 47.53, sales_call 52.47",
        "email 225, webinar 37.50, sales_call 37.50; email 75, sales_call 25",
        "email 120, webinar 60, sales_call 120",
        "deal 1: email 100, webinar 100, sales_call 100; deal 2: email 50, sales_call 50",
        "(unallocated: removal effect from non-converting paths)",
    ):
        assert phrase in content, phrase


@pytest.mark.django_db
def test_the_method_page_is_for_report_readers(users, client: Client) -> None:
    url = reverse("attribution-method")
    assert client.get(url).status_code == 302
    client.force_login(users["privacy_officer"])
    assert client.get(url).status_code == 403
    for role in ("marketer", "sales_rep", "manager"):
        client.force_login(users[role])
        page = client.get(url)
        assert page.status_code == 200
        assert b"Worth function" in page.content
        assert b"deal 1: email 82.50" in page.content


ATTRIBUTION_TABLES = ("attribution", "models", "campaigns")


@pytest.mark.django_db
@pytest.mark.parametrize("dashboard", ["dashboard-manager", "dashboard-marketing"])
def test_every_attribution_table_links_to_the_method_page(
    users, client: Client, dashboard: str
) -> None:
    client.force_login(users["manager"])
    page = client.get(reverse(dashboard)).content.decode()
    link = f'href="{reverse("attribution-method")}" data-method-link'
    tables = page.split('<div class="report-table" id="table-')[1:]
    shown = [table for table in tables if table.split('"', 1)[0] in ATTRIBUTION_TABLES]
    assert shown
    for table in shown:
        assert link in table, table.split('"', 1)[0]
    for table in tables:
        if table.split('"', 1)[0] not in ATTRIBUTION_TABLES:
            assert link not in table


def complete_run(**fields: object) -> AttributionRun:
    return AttributionRun.objects.create(
        status=RunStatus.COMPLETE,
        created_at=timezone.now(),
        finished_at=timezone.now(),
        model_names=[m for m in AttributionModel.values if m != "markov"],
        **fields,
    )


@pytest.mark.django_db
def test_a_model_the_run_could_not_compute_is_a_409_naming_why(users, api_client_for) -> None:
    run = complete_run(models_unavailable={"markov": "FitError: the split missed"})
    client = api_client_for(users["marketer"])
    answer = client.get("/api/v1/reports/attribution/", {"model": "markov"})
    assert answer.status_code == 409
    assert answer.json() == {
        "type": "client_error",
        "errors": [
            {
                "code": "model_unavailable",
                "detail": f"Attribution run #{run.pk} could not compute markov: "
                "FitError: the split missed",
                "attr": "model",
            }
        ],
    }
    assert client.get("/api/v1/reports/attribution/", {"model": "linear"}).status_code == 200


@pytest.mark.django_db
def test_a_run_that_silently_left_a_model_out_is_a_409_not_an_empty_answer(
    users, api_client_for
) -> None:
    # Runs before models_unavailable existed dropped shapley past 15 channels with a log line.
    run = complete_run()
    run.model_names = [m for m in AttributionModel.values if m != "shapley"]
    run.save()
    answer = api_client_for(users["manager"]).get(
        "/api/v1/reports/attribution/", {"model": "shapley"}
    )
    assert answer.status_code == 409
    assert answer.json()["errors"][0]["code"] == "model_unavailable"
    assert f"run #{run.pk} did not compute shapley" in answer.json()["errors"][0]["detail"]


@pytest.mark.django_db
def test_the_dashboard_says_why_a_model_is_missing(users, client: Client) -> None:
    complete_run(models_unavailable={"markov": "FitError: the split missed"})
    client.force_login(users["manager"])
    page = client.get(reverse("dashboard-manager"), {"model": "markov"}).content.decode()
    assert "could not compute markov: FitError: the split missed" in page
