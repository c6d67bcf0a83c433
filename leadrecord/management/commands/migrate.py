"""``migrate`` as the owner: with ``MIGRATE_DATABASE_URL`` set, it connects as that role.

The application's own role (``DATABASE_URL``) owns no table and may not create
one, so the schema is made and changed by the owner; run ``grant_app_role``
afterwards so the application's role may use new tables.
"""

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrateCommand

from leadrecord.db_roles import owner_connection


class Command(DjangoMigrateCommand):
    help = (
        f"{DjangoMigrateCommand.help} With MIGRATE_DATABASE_URL set, connects as that "
        "owner role instead of DATABASE_URL's."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with owner_connection(options["database"]):
            super().handle(*args, **options)
