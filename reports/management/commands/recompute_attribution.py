import sys
from typing import Any

from django.core.management.base import BaseCommand

from reports.models import RunStatus
from reports.runs import run_execute, run_request


class Command(BaseCommand):
    help = "Run attribution now, in this process; exit 1 if the run fails."

    def handle(self, *args: Any, **options: Any) -> None:
        run, created = run_request(trigger="command")
        if not created:
            self.stderr.write(f"attribution run #{run.pk} is already {run.status}; waiting on it")
        run = run_execute(run_id=run.pk)
        if run.status != RunStatus.COMPLETE:
            self.stderr.write(f"attribution run #{run.pk} {run.status}: {run.error}")
            sys.exit(1)
        seconds = (run.finished_at - run.started_at).total_seconds()  # type: ignore[operator]
        self.stdout.write(
            f"attribution run #{run.pk} complete: {run.conversions} conversions, "
            f"{run.touches} touches, {len(run.model_names)} models in {seconds:.1f} s"
        )
