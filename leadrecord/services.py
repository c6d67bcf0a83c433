"""Writes on users and API tokens, each on the ledger."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from rest_framework.authtoken.models import Token

from .ledger import Actor, ledger_append
from .roles import Role


class RoleError(ValueError):
    pass


def user_create(
    *, username: str, role: str, password: str | None, actor: Actor
) -> tuple[User, bool]:
    """Create ``username`` in ``role`` (or add the role to an existing user).

    Without a password the account cannot log in on pages (an integration
    uses a token). Returns the user and whether it was created.
    """
    if role not in Role.values:
        raise RoleError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    user_model = get_user_model()
    with transaction.atomic():
        user, created = user_model.objects.select_for_update().get_or_create(username=username)
        if password is not None:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name=role))
        ledger_append(
            actor=actor,
            action="user.create" if created else "user.update",
            subject_type="user",
            subject_id=user.pk,
            after={"username": username, "role": role, "password_set": password is not None},
        )
    return user, created


def token_issue(*, user: User, actor: Actor) -> Token:
    """The user's API token, created on first issue (the key is never logged)."""
    with transaction.atomic():
        token, created = Token.objects.get_or_create(user=user)
        if created:
            ledger_append(
                actor=actor,
                action="token.issue",
                subject_type="user",
                subject_id=user.pk,
                after={"username": user.get_username()},
            )
    return token
