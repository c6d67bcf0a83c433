from typing import Any

from django.core.management.base import BaseCommand

from reports.aggregates import people_aggregates_refresh


class Command(BaseCommand):
    help = (
        "Rebuild the people aggregates whole from the record (the periodic update keeps "
        "them up to date; this is the fallback, and what a bulk load outside the ledger needs)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        state = people_aggregates_refresh()
        self.stdout.write(
            f"people aggregates rebuilt as of ledger seq {state.ledger_mark}: "
            f"{state.people} people, {state.touch_days} touch days"
        )
