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
