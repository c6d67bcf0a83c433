"""Where a run's credits go: per-run partitions on PostgreSQL, retention, failed runs, swaps."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
from django.db import connection
from django.utils import timezone

from handoff import services
from leadrecord.ledger import Actor
from reports import runs
from reports.attribution_credits import UNALLOCATED_CHANNEL_ID, UNALLOCATED_TEAM, credits_compute
from reports.models import AttributionCredit, AttributionDaily, AttributionRun, RunStatus
from reports.run_input import run_input_read
from reports.runs import run_execute, run_request
from reports.selectors import run_latest_complete
from tests.factories import contact_make

from .. import workers
from .conftest import DAY, touch, won_deal

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _lost_deal(members: list[Any], *, lost: timedelta) -> None:
    organization = members[0].organization
    deal, _ = services.deal_create(
        name="Lost",
        organization=organization,
        members=[services.Member(member, "champion") for member in members],
        amount=Decimal("900.00"),
        actor=SYSTEM,
        occurred_at=timezone.now() - lost - DAY,
    )
    services.sale_event_record(
        deal=deal,
        kind="lost",
        amount=Decimal("0"),
        actor=SYSTEM,
        occurred_at=timezone.now() - lost,
    )


@pytest.fixture
def busy_record(record) -> None:
    """Three won deals on overlapping channels, equal amounts (ties), a lost deal whose path
    gives ``content`` removal effect that no won deal can carry (unallocated rows), and a
    deal nobody touched."""
    people = [contact_make(organization=f"org{i % 3}.example") for i in range(8)]
    touch(people[0], "web", 40 * DAY)
    touch(people[0], "email", 30 * DAY)
    touch(people[1], "email", 25 * DAY)
    touch(people[2], "web", 33 * DAY)
    touch(people[2], "sales_call", 31 * DAY)
    touch(people[3], "content", 50 * DAY)
    touch(people[3], "web", 45 * DAY)
    touch(people[4], "content", 20 * DAY)
    touch(people[4], "content", 19 * DAY)
    touch(people[5], "content", 18 * DAY)
    touch(people[5], "web", 17 * DAY)
    won_deal([people[0], people[1]], amount="500.00", opened=26 * DAY, won=10 * DAY)
    won_deal([people[2]], amount="500.00", opened=32 * DAY, won=9 * DAY)
    won_deal([people[3]], amount="120.50", opened=44 * DAY, won=8 * DAY)
    won_deal([people[6]], amount="75.00", opened=4 * DAY, won=2 * DAY)
    _lost_deal([people[4], people[5]], lost=3 * DAY)


def run_now() -> AttributionRun:
    run, _ = run_request(trigger="command")
    return run_execute(run_id=run.pk)


def stored_rows(run: AttributionRun) -> list[tuple[Any, ...]]:
    return sorted(
        AttributionCredit.objects.filter(run=run).values_list(
            "model",
            "sale_event_id",
            "deal_id",
            "channel_id",
            "campaign_id",
            "team",
            "credit",
            "conversion_share",
            "converted_at",
        )
    )


def engine_rows(run: AttributionRun) -> list[tuple[Any, ...]]:
    """The rows the whole-record engine gives for the run's record (what runs stored
    before they were partitioned), built one by one in Python."""
    data = run_input_read(lookback_days=run.lookback_days or 365, now=run.started_at)
    team = {**data.channel_team, UNALLOCATED_CHANNEL_ID: UNALLOCATED_TEAM}
    rows = []
    for block in credits_compute(data):
        for conversion, channel, campaign, credit, share in zip(
            block.conversion.tolist(),
            block.channel.tolist(),
            block.campaign.tolist(),
            block.credit.tolist(),
            block.share.tolist(),
            strict=True,
        ):
            rows.append(
                (
                    block.model,
                    int(data.sale_event_id[conversion]),
                    int(data.deal_id[conversion]),
                    channel,
                    campaign or None,
                    team.get(channel, ""),
                    credit,
                    share,
                    datetime.fromtimestamp(float(data.converted_at[conversion]), tz=UTC),
                )
            )
    return sorted(rows)


def test_a_runs_stored_credits_are_the_engines_rows_exactly(busy_record):
    run = run_now()
    assert run.status == RunStatus.COMPLETE, run.error
    stored = stored_rows(run)
    assert stored == engine_rows(run)
    assert any(row[3] == UNALLOCATED_CHANNEL_ID for row in stored), "no unallocated row"
    assert run.unallocated.get("markov")
    assert run.finished_at is not None and run.started_at is not None
    assert run.finished_at >= run.started_at
    assert AttributionRun.objects.get(pk=run.pk).finished_at == run.finished_at
    if connection.vendor == "postgresql":
        # The run's rows are a partition of their own, with no index and no foreign key.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, "
                "(SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid), "
                "(SELECT count(*) FROM pg_constraint k WHERE k.conrelid = c.oid "
                "AND k.contype = 'f') "
                "FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
                "WHERE h.inhparent = 'reports_attributioncredit'::regclass"
            )
            assert cursor.fetchall() == [(f"reports_attributioncredit_run_{run.pk}", 0, 0)]


def _table_exists(run_id: int) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"reports_attributioncredit_run_{run_id}"])
        return cursor.fetchone()[0] is not None


def test_retention_keeps_the_last_complete_runs_and_the_one_in_flight(busy_record, settings):
    settings.ATTRIBUTION_RUNS_KEPT = 2
    first, second, third = run_now(), run_now(), run_now()
    in_flight, _ = run_request(trigger="command")
    fourth = run_execute(run_id=in_flight.pk)
    assert [run.status for run in (first, second, third, fourth)] == [RunStatus.COMPLETE] * 4
    with_credits = set(AttributionCredit.objects.values_list("run_id", flat=True).distinct())
    assert with_credits == {third.pk, fourth.pk}
    assert set(AttributionDaily.objects.values_list("run_id", flat=True).distinct()) == {
        third.pk,
        fourth.pk,
    }
    # The runs themselves stay, as the history of what ran.
    assert AttributionRun.objects.filter(status=RunStatus.COMPLETE).count() == 4
    if connection.vendor == "postgresql":
        assert [_table_exists(run.pk) for run in (first, second, third, fourth)] == [
            False,
            False,
            True,
            True,
        ]


@pytest.mark.postgres
def test_retention_never_drops_a_run_still_loading(busy_record, settings):
    settings.ATTRIBUTION_RUNS_KEPT = 1
    loading = AttributionRun.objects.create(status=RunStatus.RUNNING, created_at=timezone.now())
    runs.credit_store.staging_create(loading.pk)
    runs.credit_store.credits_retire(keep=1)
    assert _table_exists(loading.pk)


def test_a_run_that_fails_at_the_swap_leaves_nothing_behind(busy_record, monkeypatch):
    good = run_now()
    served = stored_rows(good)

    def broken(**entry: Any) -> None:
        raise RuntimeError("the run's ledger entry could not be written")

    # The run's ledger entry is the swap transaction's last write, after the attach.
    monkeypatch.setattr(runs, "ledger_append", broken)
    failed = run_now()
    assert failed.status == RunStatus.FAILED and "ledger entry" in failed.error
    assert not AttributionCredit.objects.filter(run=failed).exists()
    assert not AttributionDaily.objects.filter(run=failed).exists()
    assert not _table_exists(failed.pk)
    assert run_latest_complete() == good
    assert stored_rows(good) == served


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_readers_see_the_previous_run_until_the_swap_commits(busy_record, monkeypatch):
    previous = run_now()
    previous_rows = AttributionCredit.objects.filter(run=previous).count()
    seen: dict[str, Any] = {}

    write_entry = runs.ledger_append

    def look(**entry: Any) -> Any:
        # Inside the swap's transaction, after the attach: another session is a reader.
        reader = psycopg2.connect(workers.test_database_url())
        try:
            with reader.cursor() as cursor:
                cursor.execute("SET lock_timeout = '5s'")
                cursor.execute(
                    "SELECT max(id) FROM reports_attributionrun WHERE status = 'complete'"
                )
                seen["latest"] = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT run_id, count(*) FROM reports_attributioncredit GROUP BY run_id"
                )
                seen["credits"] = dict(cursor.fetchall())
        finally:
            reader.close()
        return write_entry(**entry)

    monkeypatch.setattr(runs, "ledger_append", look)
    swapped = run_now()
    assert swapped.status == RunStatus.COMPLETE, swapped.error
    assert seen == {"latest": previous.pk, "credits": {previous.pk: previous_rows}}
    assert AttributionCredit.objects.filter(run=swapped).count() == previous_rows
