"""Thin Celery tasks: each calls a service and is safe to run twice."""

from celery import shared_task

from . import runs


@shared_task(name="reports.attribution_run")
def attribution_run_task(run_id: int) -> str:
    """Carry out a queued run (a finished run is left alone, so a redelivery is harmless)."""
    return str(runs.run_execute(run_id=run_id).status)


@shared_task(name="reports.attribution_nightly")
def attribution_nightly_task() -> str:
    """The nightly recompute: queue a run (or join the one in flight) and carry it out."""
    run, _ = runs.run_request(trigger="schedule")
    return str(runs.run_execute(run_id=run.pk).status)
