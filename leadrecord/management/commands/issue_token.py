from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from leadrecord.ledger import Actor
from leadrecord.services import token_issue


class Command(BaseCommand):
    help = "Print the user's API token (created on first use), and nothing else."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        try:
            user = get_user_model().objects.get(username=name)
        except get_user_model().DoesNotExist as error:
            raise CommandError(f"no user named {name!r}") from error
        token = token_issue(user=user, actor=Actor.system("manage.py issue_token"))
        self.stdout.write(token.key)
