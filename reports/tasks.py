"""Thin Celery tasks: each calls a service and is safe to run twice."""

from typing import Any

from celery import shared_task

from . import aggregates, freshness, runs


@shared_task(name="reports.attribution_run")
def attribution_run_task(run_id: int) -> str:
    """Carry out a queued run (a finished run is left alone, so a redelivery is harmless)."""
    return str(runs.run_execute(run_id=run_id).status)


@shared_task(name="reports.attribution_partition")
def attribution_partition_task(run_id: int, plan: dict[str, Any], index: int) -> int:
    """Load one partition of a run (a partition already loaded is not loaded again)."""
    return runs.partition_task_body(run_id=run_id, plan=plan, index=index)


@shared_task(name="reports.attribution_finish")
def attribution_finish_task(run_id: int, plan: dict[str, Any]) -> str:
    """A chord's callback: swap the run in (a run no longer running is left alone)."""
    return runs.finish_task_body(run_id=run_id, plan=plan)


@shared_task(name="reports.attribution_nightly")
def attribution_nightly_task() -> str:
    """The nightly recompute: queue a run (or join the one in flight) and carry it out."""
    run, _ = runs.run_request(trigger="schedule")
    return str(runs.run_execute(run_id=run.pk).status)


@shared_task(name="reports.attribution_freshen")
def attribution_freshen_task() -> str:
    """Follow the record: a run when it changed since the latest one (periodic; debounced)."""
    run = freshness.attribution_freshen()
    return str(run.status) if run else "fresh"


@shared_task(name="reports.rollups_update")
def rollups_update_task() -> str:
    """Bring the report aggregates up to the ledger (periodic; a second run at once, or
    again, finds nothing to do)."""
    state = aggregates.people_aggregates_update()
    return f"as of ledger seq {state.ledger_mark}" if state else "in progress elsewhere"
