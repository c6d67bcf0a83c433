"""Roles are Django groups, created by a data migration."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models


class Role(models.TextChoices):
    MARKETER = "marketer", "Marketer"
    SALES_REP = "sales_rep", "Sales rep"
    MANAGER = "manager", "Manager"
    PRIVACY_OFFICER = "privacy_officer", "Privacy officer"
    INTEGRATION = "integration", "Integration"


def user_roles(user: AbstractBaseUser | AnonymousUser | None) -> frozenset[str]:
    """The user's role names, cached on the user object for the request."""
    if user is None or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_leadrecord_roles", None)
    if cached is None:
        cached = frozenset(
            user.groups.filter(name__in=Role.values).values_list("name", flat=True)  # type: ignore[attr-defined]
        )
        user._leadrecord_roles = cached  # type: ignore[attr-defined]
    return cached


def user_has_role(user: AbstractBaseUser | AnonymousUser | None, *roles: str) -> bool:
    return not user_roles(user).isdisjoint(roles)


def roles_ensure(**kwargs: object) -> None:
    """Create any missing role group.

    The data migration creates them; this runs after every ``migrate`` and
    ``flush`` (Django's ``post_migrate``), so a flushed database has them too.
    """
    from django.contrib.auth.models import Group

    for name in Role.values:
        Group.objects.get_or_create(name=name)
