"""A run's partitions as a Celery chord on a real worker: the same credits as in one process."""

import pytest

from leadrecord import celery_app
from reports.models import AttributionCredit, AttributionRunPartition, RunStatus

from ..workers import celery_worker_process
from .test_credit_store import busy_record, run_now, stored_rows

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]
__all__ = ["busy_record"]  # the fixture, used by name


def test_a_run_as_a_chord_on_workers_stores_the_single_process_rows(busy_record, settings):
    settings.ATTRIBUTION_PARTITION_CONVERSIONS = 1
    alone = run_now()
    assert alone.status == RunStatus.COMPLETE, alone.error
    settings.ATTRIBUTION_CHORD = True
    with celery_worker_process(concurrency=2):
        chorded = run_now()
        # The worker carried out every partition and the swap.
        stats = celery_app.control.inspect(timeout=5).stats() or {}
    done = {name: count for worker in stats.values() for name, count in worker["total"].items()}
    assert done == {"reports.attribution_partition": 5, "reports.attribution_finish": 1}
    assert chorded.status == RunStatus.COMPLETE, chorded.error
    assert chorded.pk > alone.pk and chorded.finished_at is not None
    assert stored_rows(chorded) == stored_rows(alone) != []
    assert (chorded.model_names, chorded.unallocated, chorded.input_digest) == (
        alone.model_names,
        alone.unallocated,
        alone.input_digest,
    )
    # The partitions' records go once the run is swapped in.
    assert not AttributionRunPartition.objects.exists()


def test_a_chord_whose_partition_fails_fails_the_run_and_leaves_nothing(busy_record, settings):
    settings.ATTRIBUTION_PARTITION_CONVERSIONS = 2
    settings.ATTRIBUTION_CHORD = True
    # The worker cannot write credits: its partitions fail, the run with them.
    with celery_worker_process(
        concurrency=2, env={"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    ):
        failed = run_now()
    assert failed.status == RunStatus.FAILED and "partition" in failed.error
    assert not AttributionCredit.objects.filter(run=failed).exists()
    assert not AttributionRunPartition.objects.exists()
