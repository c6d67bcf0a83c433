"""End to end: a record built through the API, a run, and what reports/attribution/ serves
for markov and shapley against independent computations (an exact removal effect from a
dense matrix, and an even split written out), over the whole range and half of it."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import numpy as np
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Channel
from reports.attribution_credits import UNALLOCATED_KEY
from reports.runs import run_execute, run_request
from tests.reports.test_attribution_properties import dense_markov_credit

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
# A sale: its path's channels, its value and when it was won.
Sale = tuple[list[str], float, datetime]


def build_record(client: APIClient) -> tuple[list[Sale], list[list[str]]]:
    """Twelve deals of one or two people: eight won, four lost; touches over six channels,
    with repeats and self-loops. Returns (path, value, won at) per sale and the lost paths."""
    keys = sorted(Channel.objects.filter(active=True).values_list("key", flat=True))[:6]
    rng = np.random.default_rng(19)
    now = timezone.now().replace(microsecond=0)
    sales: list[Sale] = []
    lost: list[list[str]] = []
    for number in range(12):
        members = []
        for person in range(int(rng.integers(1, 3))):
            answer = client.post(
                "/api/v1/contacts/",
                {
                    "email": f"p{number}-{person}@org{number}.example",
                    "organization": {"name": f"Org {number}", "domain": f"org{number}.example"},
                },
                format="json",
            )
            assert answer.status_code == 201, answer.json()
            members.append(answer.json())
        end = now - (40 - 3 * number) * DAY
        path: list[str] = []
        for step in range(int(rng.integers(1, 6))):
            channel = keys[int(rng.integers(0, len(keys)))]
            if step and rng.random() < 0.3:
                channel = path[-1]  # a self-loop
            member = members[step % len(members)]
            moment = end - (10 - step) * DAY
            answer = client.post(
                "/api/v1/touches/",
                {"contact": member["id"], "channel": channel, "occurred_at": moment.isoformat()},
                format="json",
            )
            assert answer.status_code == 201, answer.json()
            path.append(channel)
        answer = client.post(
            "/api/v1/deals/",
            {
                "name": f"Deal {number}",
                "organization": members[0]["organization"]["id"],
                "contacts": [{"contact": m["id"], "role": "champion"} for m in members],
                "amount": "1000.00",
                "occurred_at": (end - 2 * DAY).isoformat(),
            },
            format="json",
        )
        assert answer.status_code == 201, answer.json()
        deal = answer.json()["id"]
        value = float(rng.integers(100, 5000))
        kind = "lost" if number % 3 == 2 else "won"
        body = {"kind": kind, "occurred_at": end.isoformat()}
        if kind == "won":
            body["amount"] = f"{value:.2f}"
        answer = client.post(f"/api/v1/deals/{deal}/sale-events/", body, format="json")
        assert answer.status_code == 201, answer.json()
        if kind == "won":
            sales.append((path, value, end))
        else:
            lost.append(path)
    return sales, lost


def served(client: APIClient, model: str, start: date, end: date) -> dict[str, float]:
    answer = client.get(
        "/api/v1/reports/attribution/",
        {"model": model, "group_by": "channel", "from": str(start), "to": str(end)},
    )
    assert answer.status_code == 200, answer.json()
    return {row["key"]: row["credit"] for row in answer.json()["rows"]}


def even_split(sales: list[Sale]) -> dict[str, float]:
    credit: dict[str, float] = defaultdict(float)
    for path, value, _ in sales:
        for channel in set(path):
            credit[channel] += value / len(set(path))
    return dict(credit)


def test_served_markov_and_shapley_equal_independent_models(users, api_client_for) -> None:
    manager = api_client_for(users["manager"])
    sales, lost = build_record(manager)
    run, _ = run_request(trigger="command")
    run = run_execute(run_id=run.pk)
    assert run.status == "complete", run.error
    assert run.models_unavailable == {}

    days = sorted(moment.date() for _, _, moment in sales)
    first, last = days[0] - DAY, days[-1] + DAY
    # Shapley: the served credits are an even split, over the whole range and half of it.
    assert served(manager, "shapley", first, last) == pytest.approx(even_split(sales), abs=0.01)
    middle = days[len(days) // 2]
    half = [sale for sale in sales if sale[2].date() <= middle]
    assert served(manager, "shapley", first, middle) == pytest.approx(even_split(half), abs=0.01)

    # Markov: the served credits per channel, with the unallocated line's origin, equal the
    # exact removal effects of the same paths (every member's touches; lost deals as
    # non-converting paths), computed from a dense matrix.
    expected = dense_markov_credit(
        [path for path, _, _ in sales] + lost,
        [True] * len(sales) + [False] * len(lost),
        [value for _, value, _ in sales] + [0.0] * len(lost),
    )
    full = served(manager, "markov", first, last)
    keys = dict(Channel.objects.values_list("id", "key"))
    unallocated = {keys[int(c)]: amount for c, amount in run.unallocated.get("markov", {}).items()}
    placed = {key: credit for key, credit in full.items() if key != UNALLOCATED_KEY}
    for channel, credit in expected.items():
        assert placed.get(channel, 0.0) + unallocated.get(channel, 0.0) == pytest.approx(
            credit, abs=0.02
        ), channel
    assert full.get(UNALLOCATED_KEY, 0.0) == pytest.approx(sum(unallocated.values()), abs=0.01)
    # Half the range sums its own sales' credits: its total is their value, and the two
    # halves add up to the whole.
    first_half = served(manager, "markov", first, middle)
    second_half = served(manager, "markov", middle + DAY, last)
    assert sum(first_half.values()) == pytest.approx(sum(v for _, v, _ in half), abs=0.05)
    for key, credit in full.items():
        assert first_half.get(key, 0.0) + second_half.get(key, 0.0) == pytest.approx(
            credit, abs=0.02
        ), key
