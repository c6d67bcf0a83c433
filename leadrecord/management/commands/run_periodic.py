from typing import Any

from django.core.management.base import BaseCommand

from leadrecord.periodic import periodic_run_due


class Command(BaseCommand):
    help = (
        "Run every periodic job (CELERY_BEAT_SCHEDULE) that is due, once, in this process; "
        "a slot another process already claimed is left to it."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        outcomes = periodic_run_due()
        if not outcomes:
            self.stdout.write("nothing due")
        for outcome in outcomes:
            line = f"{outcome.job} at {outcome.slot.isoformat()}: {outcome.outcome}"
            if outcome.error:
                line += f" ({outcome.error})"
            self.stdout.write(line)
