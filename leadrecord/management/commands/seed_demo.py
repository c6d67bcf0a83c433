from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from leadrecord.ledger import Actor
from leadrecord.roles import Role
from leadrecord.services import user_create

# One demo user per role; the password is for the local demo only.
DEMO_PASSWORD = "leadrecord-demo"  # noqa: S105
DEMO_USERS = (
    ("maria", Role.MARKETER),
    ("sam", Role.SALES_REP),
    ("morgan", Role.MANAGER),
    ("priya", Role.PRIVACY_OFFICER),
    ("crm-sync", Role.INTEGRATION),
)


class Command(BaseCommand):
    help = "Create a realistic, reproducible demo data set (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contacts", type=int, default=200)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("manage.py seed_demo")
        existing = set(get_user_model().objects.values_list("username", flat=True))
        self.stdout.write(f"Demo users (password for all: {DEMO_PASSWORD}):")
        for username, role in DEMO_USERS:
            if username not in existing:
                user_create(username=username, role=role, password=DEMO_PASSWORD, actor=actor)
            self.stdout.write(f"  {username:<10} {role.label}")
