"""A run cut into partitions gives exactly the whole-record computation's credits."""

from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from contacts.models import Campaign, Channel
from contacts.services import touch_record
from leadrecord.ledger import Actor
from reports import credit_store, runs
from reports.attribution_credits import credits_compute
from reports.models import AttributionCredit, AttributionRun, RunStatus
from reports.run_input import (
    InputDigest,
    conversion_bounds,
    nonconverting_read,
    run_input_read,
)
from tests.factories import contact_make

from .conftest import DAY, won_deal
from .test_credit_store import busy_record, engine_rows, run_now, stored_rows

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
__all__ = ["busy_record"]  # the fixture, used by name


@pytest.fixture
def tied_record(busy_record) -> None:
    """On top of ``busy_record``: two touches at the same moment on one path (ties broken by
    touch id), a campaign, and a conversion whose two buyers share a touch time."""
    web = Channel.objects.get(key="web")
    spring = Campaign.objects.create(name="Spring", channel=web, created_at=timezone.now())
    same = timezone.now() - 36 * DAY
    first, second = contact_make(organization="tie.example"), contact_make()
    for channel, campaign in ((web, spring), (Channel.objects.get(key="email"), None)):
        touch_record(
            contact=first, channel=channel, campaign=campaign, occurred_at=same, actor=SYSTEM
        )
    touch_record(
        contact=second,
        channel=Channel.objects.get(key="sales_call"),
        occurred_at=same,
        actor=SYSTEM,
    )
    won_deal([first, second], amount="500.00", opened=30 * DAY, won=7 * DAY)


def _summary(run: AttributionRun) -> tuple[Any, ...]:
    return (
        run.status,
        run.error,
        run.conversions,
        run.touches,
        run.model_names,
        run.models_unavailable,
        run.unallocated,
        run.input_digest,
    )


def test_a_run_in_one_or_many_partitions_stores_the_same_rows(tied_record, settings):
    settings.ATTRIBUTION_PARTITION_CONVERSIONS = 1_000
    whole = run_now()
    assert whole.status == RunStatus.COMPLETE, whole.error
    assert len(conversion_bounds(1_000)) == 1
    reference = stored_rows(whole)
    assert reference == engine_rows(whole)
    # Ties, the campaign, the unallocated rows and the untouched conversion are all there.
    assert any(row[4] is not None for row in reference)
    assert any(row[3] == 0 for row in reference)
    data = run_input_read(lookback_days=whole.lookback_days or 365, now=whole.started_at)
    # The fifth conversion (the deal nobody touched) has no path.
    assert data.conversions == 6 and 4 not in data.touch_conversion.tolist()
    blocks = {block.model: block for block in credits_compute(data)}
    assert whole.unallocated == {
        "markov": {str(k): v for k, v in blocks["markov"].unallocated.items()}
    }
    assert whole.input_digest == data.digest()

    for size in (1, 2, 4):
        settings.ATTRIBUTION_PARTITION_CONVERSIONS = size
        assert len(conversion_bounds(size)) == -(-6 // size)
        cut = run_now()
        assert stored_rows(cut) == reference, size
        assert _summary(cut)[:1] + _summary(cut)[2:] == _summary(whole)[:1] + _summary(whole)[2:]


def test_an_empty_record_runs_in_one_empty_partition(settings):
    settings.ATTRIBUTION_PARTITION_CONVERSIONS = 1
    assert conversion_bounds(1) == [(0, 1)]
    run = run_now()
    assert run.status == RunStatus.COMPLETE, run.error
    assert (run.conversions, run.touches) == (0, 0)
    assert stored_rows(run) == []


def test_nonconverting_paths_spread_over_buckets_count_the_same(tied_record):
    now = timezone.now()

    def paths(bucket_rows: int) -> tuple[list[tuple[int, ...]], str]:
        found, digest = [], InputDigest(365)
        for channel, starts in nonconverting_read(
            now=now, lookback_days=365, withdrawn=set(), bucket_rows=bucket_rows
        ):
            digest.add_nonconverting(channel, starts)
            for piece in np.split(channel, starts[1:]):
                found.append(tuple(piece.tolist()))
        return sorted(found), digest.hexdigest({})

    whole = paths(1_000)
    assert len(whole[0]) >= 2
    assert paths(1) == whole
    data = run_input_read(lookback_days=365, now=now)
    assert (
        sorted(
            tuple(piece.tolist())
            for piece in np.split(data.nonconverting_channel, data.nonconverting_starts[1:])
        )
        == whole[0]
    )


def test_a_partition_carried_out_twice_loads_once(tied_record):
    now = timezone.now()
    run = AttributionRun.objects.create(
        status=RunStatus.RUNNING, created_at=now, started_at=now, lookback_days=365
    )
    plan = runs.run_plan(run)
    credit_store.staging_create(run.pk)
    first = runs.partition_load(run=run, plan=plan, index=0)
    assert first.rows > 0
    assert runs.partition_load(run=run, plan=plan, index=0) == first
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {credit_store.staging_table(run.pk)}")
            assert cursor.fetchone()[0] == first.rows
    else:
        assert AttributionCredit.objects.filter(run=run).count() == first.rows
    runs.run_finish(run=run, plan=plan)
    assert AttributionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETE
    assert AttributionCredit.objects.filter(run=run).count() == first.rows
