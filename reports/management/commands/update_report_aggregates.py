import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from reports.aggregates import people_aggregates_update


class Command(BaseCommand):
    help = (
        "Bring the report aggregates and rollups up to the ledger once (what the periodic "
        "report-rollups job does), or every --every seconds until stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=0.0, help="repeat at this interval")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            started = time.monotonic()
            state = people_aggregates_update()
            seconds = time.monotonic() - started
            if state is None:
                self.stdout.write("another update is in progress")
            else:
                self.stdout.write(
                    f"report aggregates as of ledger seq {state.ledger_mark} ({seconds:.2f} s)"
                )
            if options["every"] <= 0:
                return
            connections.close_all()
            time.sleep(max(0.0, options["every"] - seconds))
