"""API token authentication: django-rest-knox's tokens, read in one query; and a
session's user, read with their roles in one query.

Only a digest of each key is stored (knox: SHA-512 of the key, and the key's
first characters to find the row); a token expires (``API_TOKEN_TTL_DAYS``)
and can be revoked by rotation (``leadrecord.services.token_issue``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from hmac import compare_digest
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import exceptions

from .roles import Role

# Keys knox makes are 64 hexadecimal characters; the 40-character ones are DRF
# keys issued before knox, carried over as digests by migration 0006_api_tokens_hashed.
_TOKEN_KEY = re.compile(r"[0-9a-f]{64}|[0-9a-f]{40}")
# Role names hold no comma (Role's values), so a comma-joined list splits back.
_ROLE_SEPARATOR = ","


def _role_names_sql() -> str:
    """The role names of the user ``u`` joined by ``_ROLE_SEPARATOR``, as a subquery: only
    the aggregate's name differs per database."""
    join_names = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    memberships = get_user_model().groups.through._meta.db_table
    return (
        f"(SELECT {join_names}(g.name, '{_ROLE_SEPARATOR}') FROM {memberships} m "  # noqa: S608 -- model names only
        "JOIN auth_group g ON g.id = m.group_id WHERE m.user_id = u.id)"
    )


def _user_with_token_and_roles_sql() -> str:
    # One raw query per authenticated request, which bench/ingest.py's requests need
    # (see ApiTokenAuthentication).
    return (
        "SELECT u.*, t.digest AS token_digest, t.created AS token_created, "  # noqa: S608 -- model names only
        f"t.expiry AS token_expiry, {_role_names_sql()} AS role_names "
        f"FROM {AuthToken._meta.db_table} t JOIN {get_user_model()._meta.db_table} u "
        "ON u.id = t.user_id WHERE t.token_key = %s AND (t.expiry IS NULL OR t.expiry > %s)"
    )


def _roles_remember(user: Any) -> None:
    """Keep the raw query's ``role_names`` on the user for the rest of the request (read by
    ``leadrecord.roles.user_roles``)."""
    names: str | None = getattr(user, "role_names", None)
    user._leadrecord_roles = frozenset(
        name for name in (names.split(_ROLE_SEPARATOR) if names else ()) if name in Role.values
    )


class SessionUserBackend(ModelBackend):
    """Django's model backend, whose ``get_user`` (each request of a logged-in session)
    reads the user and their roles in one query instead of two: every page asks for the
    reader's roles, and each query is one more wait while events stream in on the same
    cores (``bench/report_latency.py``'s loaded figures)."""

    def get_user(self, user_id: Any) -> Any:
        user_model = get_user_model()
        try:
            key = user_model._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        rows = list(
            user_model.objects.raw(
                f"SELECT u.*, {_role_names_sql()} AS role_names "  # noqa: S608 -- model names only
                f"FROM {user_model._meta.db_table} u WHERE u.id = %s",
                [key],
            )
        )
        user = rows[0] if rows else None
        if user is None or not self.user_can_authenticate(user):
            return None
        _roles_remember(user)
        return user


def _as_datetime(value: Any) -> datetime | None:
    """A raw query's timestamp column: PostgreSQL gives a datetime, SQLite the stored text."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None and timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=UTC)
        return parsed
    return value if isinstance(value, datetime) else None


class ApiTokenAuthentication(TokenAuthentication):
    """knox's token auth (``Authorization: Token <key>``) that refuses a malformed key
    before it reaches the database and reads the token, its user and the user's
    roles in one query.

    A key with a NUL byte, say, would otherwise make PostgreSQL's driver raise
    and the caller get a 500 instead of a 401. Every API request asks for the
    caller's roles: one statement instead of knox's three (token with user, the
    user's other tokens to delete expired ones, then groups) is measured by
    ``bench/ingest.py``'s ``GET me/``. Expired tokens are refused in that query
    and left in place; rotation deletes them (``token_issue``).
    """

    def authenticate_credentials(self, token: bytes | str) -> tuple[Any, AuthToken]:
        try:
            key = token.decode("utf-8") if isinstance(token, bytes) else token
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not _TOKEN_KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        digest = hash_token(key)
        # A raw query still converts the user's columns as the ORM does. Several
        # rows may share the key's first characters; the digest tells them apart.
        rows: Iterable[Any] = get_user_model().objects.raw(
            _user_with_token_and_roles_sql(), [key[: CONSTANTS.TOKEN_KEY_LENGTH], now]
        )
        user = next((row for row in rows if compare_digest(row.token_digest, digest)), None)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        _roles_remember(user)
        auth_token = AuthToken(
            digest=digest,
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            user=user,
            created=_as_datetime(user.token_created),
            expiry=_as_datetime(user.token_expiry),
        )
        return (user, auth_token)
