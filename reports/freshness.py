"""How fresh attribution is, and the run that follows changes to the record.

A run reads the record as of its ledger mark (``AttributionRun.ledger_mark``,
the ledger's last seq when it began). Every change to the record is on the
ledger, so the changes a run may be missing are the entries after its mark
whose action can move a credit (``reports.change_counts.ATTRIBUTION_ACTIONS``): the
figures say "as of run #N, finished at T; K changes since", K from the notes the report
update keeps (``reports.change_counts``).

``attribution_freshen`` is the periodic job (``attribution-fresh`` in the
beat schedule, run by Celery beat or, without a broker, by the web process)
that turns those changes into a run: it carries out a run left queued, and
otherwise requests a run when there are changes since the latest complete one
and no run began within ``ATTRIBUTION_REFRESH_MINUTES``. Changes coming in
meanwhile are picked up together by that next run: a burst of writes costs
one run, and a steady stream one run per interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from leadrecord.models import LedgerEntry

from .change_counts import attribution_relevant, changes_after, run_mark
from .models import AttributionRun, RunStatus
from .report_cache import report_cached
from .runs import run_execute, run_request
from .selectors import run_latest_complete


def changes_since(run: AttributionRun) -> int:
    """How many changes that can move a credit the ledger holds after the run's mark."""
    return _changes_after(run_mark(run))


@report_cached
def _changes_after(mark: int) -> int:
    # Cached per state of the record: a page shows the line on every attribution figure.
    # From the report update's notes, not a count of every entry since the run.
    return changes_after(mark)


@dataclass(frozen=True)
class Freshness:
    """What an attribution figure is as of: the run read, and the changes since it."""

    run_id: int | None
    finished_at: datetime | None
    changes_since: int | None
    # A run queued or running now, if any (the page links to its progress).
    pending_run_id: int | None
    pending_status: str

    @property
    def text(self) -> str:
        if self.run_id is None or self.finished_at is None:
            return "No attribution run has completed yet."
        moment = timezone.localtime(self.finished_at).strftime("%Y-%m-%d %H:%M %Z")
        changes = self.changes_since or 0
        return (
            f"As of run #{self.run_id}, finished at {moment}; "
            f"{changes} change{'' if changes == 1 else 's'} since."
        )


def freshness() -> Freshness:
    run = run_latest_complete()
    pending = (
        AttributionRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .order_by("id")
        .values_list("id", "status")
        .first()
    )
    return Freshness(
        run_id=run.pk if run else None,
        finished_at=run.finished_at if run else None,
        changes_since=changes_since(run) if run else None,
        pending_run_id=pending[0] if pending else None,
        pending_status=str(pending[1]) if pending else "",
    )


def attribution_freshen(*, now: datetime | None = None) -> AttributionRun | None:
    """Carry out a queued run, or start one when the record changed since the latest complete
    run and none began within the refresh interval; the run carried out, or None."""
    now = now or timezone.now()
    interval = timedelta(minutes=settings.ATTRIBUTION_REFRESH_MINUTES)
    in_flight = (
        AttributionRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .order_by("id")
        .first()
    )
    if in_flight is not None:
        # Left to the process that queued or runs it, for a while: then a queued run whose
        # task never reached a worker is carried out here, and a running one that outlived
        # the task time limit (its process died) is replaced by run_execute.
        waited = now - (in_flight.started_at or in_flight.created_at)
        patience = (
            timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
            if in_flight.status == RunStatus.RUNNING
            else interval
        )
        return run_execute(run_id=in_flight.pk) if waited >= patience else None
    latest = AttributionRun.objects.order_by("-id").first()
    if latest is not None and latest.created_at > now - interval:
        return None
    complete = run_latest_complete()
    if complete is not None and changes_since(complete) == 0:
        return None
    if complete is None and not LedgerEntry.objects.filter(attribution_relevant()).exists():
        return None
    run, _ = run_request(trigger="fresh")
    return run_execute(run_id=run.pk)
