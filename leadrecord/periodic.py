"""Periodic jobs without Celery beat: every due entry of ``CELERY_BEAT_SCHEDULE``, once.

With a broker, Celery beat sends the schedule's tasks to the workers. The
embedded default has neither, yet handoffs must still expire and attribution
must still follow the record. So the web process runs the schedule itself:
after a response it checks (at most every ``PERIODIC_CHECK_SECONDS``, in a
background thread, so no request waits) which entries are due and runs their
tasks in process; ``manage.py run_periodic`` does the same on request.

Every schedule Celery beat accepts is read the way beat reads it (seconds, a
``timedelta``, ``crontab`` or any ``BaseSchedule``), through the schedule
object's own ``is_due`` and ``remaining_estimate``. A job's last run is the
latest slot claimed for it in the database (``PeriodicClaim``): the first
sight of a job only records a baseline, as beat starts a new entry's clock
when it first sees it. Each due slot is the latest scheduled moment up to now
(missed ones are not replayed, again as beat does), and it is claimed by
inserting ``(job, slot)`` under a unique constraint: when several processes
find the same slot due, one insert wins and only that process runs the job.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.schedules import BaseSchedule, maybe_schedule
from celery.schedules import schedule as interval_schedule
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Max
from django.utils import timezone

from .models import PeriodicClaim

logger = logging.getLogger(__name__)

# Claims older than this are deleted as new ones are made: only the latest matters.
KEEP_CLAIMS = timedelta(days=7)
# A crontab found far behind (a server stopped for months) is caught up this many
# scheduled moments per check; the next check goes on from there.
CATCH_UP_STEPS = 10_000


@dataclass(frozen=True)
class JobOutcome:
    job: str
    slot: datetime
    outcome: str  # baseline, ok, failed
    error: str = ""


def _schedule_of(entry: dict[str, Any]) -> BaseSchedule:
    """The entry's schedule object, as beat reads it (seconds, a timedelta or a schedule)."""
    from . import celery_app

    found = maybe_schedule(copy.copy(entry["schedule"]), app=celery_app)
    if not isinstance(found, BaseSchedule):
        raise TypeError(f"not a schedule: {entry['schedule']!r}")
    return found


def due_slot(schedule: BaseSchedule, last: datetime, now: datetime) -> datetime | None:
    """The latest scheduled moment after ``last`` and at or before ``now``; None if not due."""
    # A copy reading the clock at ``now``: the settings' own object stays as beat sees it.
    schedule = copy.copy(schedule)
    schedule.nowfun = lambda: now
    due, _ = schedule.is_due(last)
    if not due:
        return None
    if isinstance(schedule, interval_schedule) and not schedule.relative:
        every = schedule.run_every
        if every <= timedelta(0):
            return now
        return last + every * ((now - last) // every)
    slot = last
    for _ in range(CATCH_UP_STEPS):
        following = now + schedule.remaining_estimate(slot)
        if following > now or following <= slot:
            break
        slot = following
    # A schedule that names no moment (a relative one) runs at the moment it is found due.
    return slot if slot != last else now


def _claim(job: str, slot: datetime, now: datetime, outcome: str) -> PeriodicClaim | None:
    try:
        with transaction.atomic():
            return PeriodicClaim.objects.create(job=job, slot=slot, claimed_at=now, outcome=outcome)
    except IntegrityError:
        return None  # another process claimed this slot first


@functools.cache
def _tasks_loaded() -> bool:
    """Import every app's ``tasks`` module once (a worker does so at start; a web process
    imports them only as its views happen to)."""
    from . import celery_app

    celery_app.loader.import_default_modules()
    return True


def _run(job: str, entry: dict[str, Any], claim: PeriodicClaim) -> JobOutcome:
    from . import celery_app

    error = ""
    try:
        _tasks_loaded()
        task = celery_app.tasks[entry["task"]]
        task.apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}), throw=True)
    except Exception as problem:
        logger.exception("periodic job %s (%s) failed", job, entry.get("task"))
        error = f"{type(problem).__name__}: {problem}"[:4000]
    outcome = "failed" if error else "ok"
    PeriodicClaim.objects.filter(pk=claim.pk).update(
        outcome=outcome, error=error, finished_at=timezone.now()
    )
    return JobOutcome(job=job, slot=claim.slot, outcome=outcome, error=error)


def periodic_run_due(
    *, now: datetime | None = None, schedule: dict[str, dict[str, Any]] | None = None
) -> list[JobOutcome]:
    """Run every entry of the beat schedule that is due, each due slot once across processes."""
    now = now or timezone.now()
    entries = settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule
    last_slots = dict(
        PeriodicClaim.objects.filter(job__in=list(entries))
        .values("job")
        .annotate(last=Max("slot"))
        .values_list("job", "last")
        .order_by()
    )
    outcomes = []
    for job, entry in entries.items():
        last = last_slots.get(job)
        if last is None:
            if _claim(job, now, now, "baseline") is not None:
                outcomes.append(JobOutcome(job=job, slot=now, outcome="baseline"))
            continue
        slot = due_slot(_schedule_of(entry), last, now)
        if slot is None or slot <= last:
            continue
        claim = _claim(job, slot, now, "running")
        if claim is not None:
            PeriodicClaim.objects.filter(job=job, slot__lt=slot - KEEP_CLAIMS).delete()
            outcomes.append(_run(job, entry, claim))
    return outcomes


# --- in the web process ------------------------------------------------------------------

_lock = threading.Lock()
_next_check = 0.0
_threads: list[threading.Thread] = []


def in_background(target: Callable[[], object], *, name: str) -> threading.Thread:
    """Run ``target`` in a daemon thread of this process, with its own database connection."""

    def work() -> None:
        try:
            target()
        except Exception:
            logger.exception("background work %s failed", name)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work, name=name, daemon=True)
    with _lock:
        _threads[:] = [alive for alive in _threads if alive.is_alive()]
        _threads.append(thread)
    thread.start()
    return thread


def background_wait(timeout: float | None = None) -> bool:
    """Wait for this process's background work to finish; whether it all did."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _lock:
        pending = list(_threads)
    for thread in pending:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in pending)


def periodic_check_soon(*, force: bool = False) -> threading.Thread | None:
    """Start a check for due jobs in the background, unless one ran within the check interval
    (or is still running). A no-op unless ``PERIODIC_IN_WEB``."""
    global _next_check
    if not settings.PERIODIC_IN_WEB:
        return None
    with _lock:
        busy = any(
            thread.is_alive() and thread.name == "leadrecord-periodic" for thread in _threads
        )
        if busy or (not force and time.monotonic() < _next_check):
            return None
        _next_check = time.monotonic() + settings.PERIODIC_CHECK_SECONDS
    return in_background(periodic_run_due, name="leadrecord-periodic")


def periodic_after_request(**_: object) -> None:
    """``request_finished`` receiver: the response has gone; look for due jobs."""
    periodic_check_soon()
