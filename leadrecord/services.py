"""Writes on users and API tokens, each on the ledger."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import QuerySet
from knox.models import AuthToken

from .ledger import Actor, ledger_append
from .models import LedgerAction
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
            action=LedgerAction.USER_CREATE if created else LedgerAction.USER_UPDATE,
            subject_type="user",
            subject_id=user.pk,
            after={"username": username, "role": role, "password_set": password is not None},
        )
    return user, created


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: ``key`` is the only copy of the plain key (the database keeps
    a digest), so whoever asked must show it now or lose it."""

    key: str
    token: AuthToken
    revoked: int


def token_issue(*, user: User, actor: Actor, rotate: bool = False) -> IssuedToken:
    """Issue ``user`` a new API token that expires after ``API_TOKEN_TTL_DAYS``.

    Other tokens of the user keep working until they expire, so a system can
    switch to the new key first; with ``rotate`` they are revoked (deleted) in
    the same transaction, expired ones included. The ledger gets ``token.issue``
    with the expiry and how many were revoked; never the key or its digest.
    """
    with transaction.atomic():
        # The user's row lock orders two issues (and rotations) for one user.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        token, key = AuthToken.objects.create(user=user)
        revoked = 0
        if rotate:
            revoked, _ = AuthToken.objects.filter(user=user).exclude(pk=token.pk).delete()
        ledger_append(
            actor=actor,
            action=LedgerAction.TOKEN_ISSUE,
            subject_type="user",
            subject_id=user.pk,
            after={
                "username": user.get_username(),
                "expires_at": token.expiry.isoformat() if token.expiry else None,
                "rotated": rotate,
                "revoked": revoked,
            },
        )
    return IssuedToken(key=key, token=token, revoked=revoked)


def tokens_revoke(*, tokens: QuerySet[AuthToken], actor: Actor) -> int:
    """Revoke (delete) ``tokens``: each is refused from then on. One ``token.revoke``
    entry per user concerned, with how many of theirs went. Returns the count."""
    with transaction.atomic():
        by_user: dict[int, tuple[str, int]] = {}
        digests = []
        for token in tokens.select_related("user").select_for_update(of=("self",)):
            name, count = by_user.get(token.user_id, (token.user.get_username(), 0))
            by_user[token.user_id] = (name, count + 1)
            digests.append(token.digest)
        revoked, _ = AuthToken.objects.filter(digest__in=digests).delete()
        for user_id, (name, count) in sorted(by_user.items()):
            ledger_append(
                actor=actor,
                action=LedgerAction.TOKEN_REVOKE,
                subject_type="user",
                subject_id=user_id,
                after={"username": name, "revoked": count},
            )
    return revoked
