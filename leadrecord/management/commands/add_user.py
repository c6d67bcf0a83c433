from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leadrecord.ledger import Actor
from leadrecord.roles import Role
from leadrecord.services import user_create


class Command(BaseCommand):
    help = "Create a user in a role (or add the role to an existing user)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument(
            "--password", help="Without it the user has no password (API token only)."
        )

    def handle(
        self, *args: Any, name: str, role: str, password: str | None, **options: Any
    ) -> None:
        name = name.strip()
        if not name or len(name) > 150:
            raise CommandError("NAME must be 1 to 150 characters")
        user, created = user_create(
            username=name, role=role, password=password, actor=Actor.system("manage.py add_user")
        )
        verb = "created" if created else "updated"
        self.stdout.write(f"{verb} user {user.get_username()} with role {role}")
