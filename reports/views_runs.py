"""Attribution runs on pages: a manager's "Recompute now", and a run's progress.

The progress page works without JavaScript: while the run is queued or running
it asks the browser to load it again every few seconds.
"""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from leadrecord.dispatch import task_start_on_commit
from leadrecord.roles import Role
from leadrecord.views_access import role_required

from .freshness import changes_since
from .models import AttributionRun, RunStatus
from .runs import run_request
from .tasks import attribution_run_task

READERS = (Role.MARKETER, Role.SALES_REP, Role.MANAGER)
# How often the progress page reloads itself while the run is not finished.
REFRESH_SECONDS = 2


@role_required(Role.MANAGER)
@require_POST
def attribution_recompute(request: HttpRequest) -> HttpResponse:
    """Queue a run (or join the one queued or running) and show its progress."""
    run, _ = run_request(user=cast(User, request.user), trigger="page")
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        # Also for a run queued earlier whose task never reached a worker: a second
        # delivery waits out a live run and replaces a dead one.
        task_start_on_commit(attribution_run_task, run.pk)
    return redirect("attribution-run", pk=run.pk)


@role_required(*READERS)
@require_GET
def attribution_run(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(AttributionRun, pk=pk)
    finished = run.status in (RunStatus.COMPLETE, RunStatus.FAILED)
    return render(
        request,
        "reports/run.html",
        {
            "run": run,
            "finished": finished,
            "refresh_seconds": REFRESH_SECONDS,
            "changes_since": changes_since(run) if run.status == RunStatus.COMPLETE else None,
        },
    )
