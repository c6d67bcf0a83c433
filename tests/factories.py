import functools
import itertools
from typing import TYPE_CHECKING

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

if TYPE_CHECKING:
    from contacts.models import Contact

TEST_PASSWORD = "correct-horse-battery-staple"


@functools.cache
def _test_password_hash() -> str:
    # Hashed once per run: the production hasher is slow on purpose.
    return make_password(TEST_PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    """A user; pass ``role="manager"`` (etc.) to put it in that role's group."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.LazyFunction(_test_password_hash)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))  # type: ignore[attr-defined]


_contact_numbers = itertools.count(1)


def contact_make(
    *,
    email: str | None = None,
    first_name: str = "Pat",
    last_name: str = "Example",
    title: str = "Head of Operations",
    organization: str | None = None,
) -> "Contact":
    """A contact created through ``contacts.services.contact_create``, so it is on the ledger.

    ``organization`` is a domain; the organization is named after it.
    """
    from contacts.services import OrganizationInput, contact_create
    from leadrecord.ledger import Actor

    contact, _ = contact_create(
        email=email or f"person{next(_contact_numbers)}@example.com",
        first_name=first_name,
        last_name=last_name,
        title=title,
        organization=(
            OrganizationInput(name=organization.split(".")[0].title(), domain=organization)
            if organization
            else None
        ),
        actor=Actor.system("test"),
    )
    return contact
