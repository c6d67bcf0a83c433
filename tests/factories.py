import functools

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

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


class ContactFactory(factory.Factory):
    """A contact created through ``contacts.services.contact_create``, so it is on the ledger."""

    class Meta:
        model = dict

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    title = "Head of Operations"
    organization = None

    @classmethod
    def _create(cls, model_class: type, *args: object, **kwargs: object) -> object:
        from contacts.services import OrganizationInput, contact_create
        from leadrecord.ledger import Actor

        organization = kwargs.pop("organization", None)
        if isinstance(organization, str):
            organization = OrganizationInput(name=organization.title(), domain=organization)
        contact, _ = contact_create(actor=Actor.system("test"), organization=organization, **kwargs)
        return contact
