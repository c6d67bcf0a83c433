from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from leadrecord.ledger import Actor
from leadrecord.services import token_issue


class Command(BaseCommand):
    help = (
        "Issue the user a new API token and print its key, and nothing else (the key "
        "is shown only now; it expires after API_TOKEN_TTL_DAYS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="Revoke the user's other tokens once the new one exists.",
        )

    def handle(self, *args: Any, name: str, rotate: bool, **options: Any) -> None:
        try:
            user = get_user_model().objects.get(username=name)
        except get_user_model().DoesNotExist as error:
            raise CommandError(f"no user named {name!r}") from error
        issued = token_issue(user=user, actor=Actor.system("manage.py issue_token"), rotate=rotate)
        self.stdout.write(issued.key)
