"""The demo data set written once per module and rolled back after it.

``seed_demo`` writes hundreds of people and a year of pipeline through the
services; the tests only read it (each in a savepoint of the module's
transaction), so one write per module is enough.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

# The demo users' passwords are hashed on every run; the production hasher's
# deliberate slowness would dominate these tests.
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@contextmanager
def demo_seeded(django_db_blocker: object, *, contacts: int) -> Iterator[str]:
    """``seed_demo --contacts`` in a transaction rolled back on exit; yields what it printed."""
    out = StringIO()
    with (
        django_db_blocker.unblock(),  # type: ignore[attr-defined]
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        call_command("seed_demo", contacts=contacts, stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def written_by_people(subject_type: str) -> list[int]:
    """The ids of the rows of ``subject_type`` that a person wrote themself (the demo's
    buyer's side: its forms and portal), which the seeded people's plan does not hold."""
    from leadrecord.models import ActorKind, LedgerEntry

    return [
        int(subject_id)
        for subject_id in LedgerEntry.objects.filter(
            actor_kind=ActorKind.PERSON, subject_type=subject_type
        ).values_list("subject_id", flat=True)
    ]
