from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leadrecord.db_roles import AppRoleError, app_role_grant


class Command(BaseCommand):
    help = (
        "Run as the owner (MIGRATE_DATABASE_URL, or the owner's DATABASE_URL), after every "
        "migrate: grant the application's database role exactly what it needs. On the "
        "ledger that is SELECT and INSERT: never UPDATE, DELETE, TRUNCATE, ALTER or triggers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the role the application connects as (DATABASE_URL)")

    def handle(self, *args: Any, role: str, **options: Any) -> None:
        try:
            grants = app_role_grant(role=role)
        except AppRoleError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"granted {grants.role}: SELECT, INSERT on {', '.join(grants.append_only)} "
            f"(append-only); SELECT on {', '.join(grants.read_only)}; "
            f"SELECT, INSERT, UPDATE, DELETE on {len(grants.read_write)} other tables; "
            f"USAGE, SELECT on {grants.sequences} sequences; "
            f"EXECUTE on {', '.join(grants.functions) or 'no functions'}"
        )
