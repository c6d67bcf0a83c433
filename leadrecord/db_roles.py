"""Two database roles: the owner migrates, the application's role only reads and writes rows.

The application connects with ``DATABASE_URL`` as a role that owns no table, so
it cannot ``ALTER`` the ledger, disable its append-only triggers, or
``UPDATE``, ``DELETE`` or ``TRUNCATE`` it: on the ledger it holds ``SELECT``
and ``INSERT`` and nothing else. The owner (``MIGRATE_DATABASE_URL``) runs
``manage.py migrate`` and ``manage.py grant_app_role ROLE``, which grants the
application's role what it needs on the tables the migrations made.

Migrations create ``SECURITY DEFINER`` functions, with ``EXECUTE`` revoked from
``PUBLIC``, for the few steps the application takes at run time that only an
owner may (``ANALYZE`` of rebuilt aggregates); ``grant_app_role`` lets the
application's role execute those and nothing else of the owner's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg2.extensions
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from .ledger_guard import LEDGER_TABLE

# Rows here are evidence: the application may add them and read them, never
# change or remove them.
APPEND_ONLY_TABLES = (LEDGER_TABLE, "leadrecord_ledgercheckpoint")
# The migration history is the owner's: the application only reads it (Django's
# start-up checks ask which migrations are applied).
READ_ONLY_TABLES = ("django_migrations",)
_OWNER_SETTINGS = ("USER", "PASSWORD", "HOST", "PORT")


class AppRoleError(Exception):
    """The role cannot be made the application's role; the message says why."""


@contextmanager
def owner_connection(alias: str = DEFAULT_DB_ALIAS) -> Iterator[BaseDatabaseWrapper]:
    """The ``alias`` connection as the owner of ``MIGRATE_DATABASE_URL``, when set.

    Only the credentials and the server change: the database stays the one the
    connection names (a test run's own database, for instance).
    """
    connection = connections[alias]
    owner = settings.MIGRATE_DATABASE
    if not owner:
        yield connection
        return
    if owner["ENGINE"] != connection.settings_dict["ENGINE"]:
        raise ImproperlyConfigured("MIGRATE_DATABASE_URL must use the same engine as DATABASE_URL.")
    saved = {name: connection.settings_dict.get(name) for name in (*_OWNER_SETTINGS, "OPTIONS")}
    connection.close()
    connection.settings_dict.update({name: owner.get(name, "") for name in _OWNER_SETTINGS})
    connection.settings_dict["OPTIONS"] = {**(saved["OPTIONS"] or {}), **owner.get("OPTIONS", {})}
    try:
        yield connection
    finally:
        connection.close()
        connection.settings_dict.update(saved)


@dataclass
class AppRoleGrants:
    role: str
    append_only: list[str] = field(default_factory=list)
    read_only: list[str] = field(default_factory=list)
    read_write: list[str] = field(default_factory=list)
    sequences: int = 0
    functions: list[str] = field(default_factory=list)


def _one(cursor: object, sql: str, params: list[object] | None = None) -> tuple[object, ...]:
    cursor.execute(sql, params or [])  # type: ignore[attr-defined]
    row: tuple[object, ...] = cursor.fetchone()  # type: ignore[attr-defined]
    return row


def _check_role(cursor: object, role: str) -> None:
    found = _one(cursor, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
    if not found:
        raise AppRoleError(
            f"no database role {role!r}: create it first "
            f"(CREATE ROLE \"{role}\" LOGIN PASSWORD '...'), then run this again"
        )
    if found[0] or found[1]:
        raise AppRoleError(
            f"{role!r} is a superuser (or bypasses row security), so no grant limits it; "
            "the application needs a plain role"
        )
    (current,) = _one(cursor, "SELECT current_user")
    if current == role:
        raise AppRoleError(
            f"this connection is {role!r} itself: run grant_app_role with the owner's URL "
            "(MIGRATE_DATABASE_URL, or DATABASE_URL of the owner)"
        )
    (member,) = _one(cursor, "SELECT pg_has_role(%s, current_user, 'MEMBER')", [role])
    if member:
        raise AppRoleError(
            f"{role!r} is a member of the owner {current!r} and would act with its rights "
            f'(ownership included): REVOKE "{current}" FROM "{role}" first'
        )
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND pg_get_userbyid(c.relowner) = %s "
        "ORDER BY c.relname",
        [role],
    )
    owned = [row[0] for row in cursor.fetchall()]  # type: ignore[attr-defined]
    if owned:
        raise AppRoleError(
            f"{role!r} owns {', '.join(owned)}: an owner can alter its tables and their "
            f'triggers. Give them to the owner (REASSIGN OWNED BY "{role}" TO "{current}") '
            "and run this again"
        )


def app_role_grant(*, role: str, alias: str = DEFAULT_DB_ALIAS) -> AppRoleGrants:
    """Grant ``role`` exactly what the application needs, revoking anything beyond it.

    Run as the owner after every ``migrate`` (new tables need their grants); running
    it again changes nothing. ``SELECT`` and ``INSERT`` only on the append-only
    tables, ``SELECT`` on the migration history, ``SELECT``, ``INSERT``, ``UPDATE``
    and ``DELETE`` on every other table, the sequences' ``USAGE`` and ``SELECT``,
    and ``EXECUTE`` on the migrations' ``SECURITY DEFINER`` functions. Never
    ``TRUNCATE``, ``REFERENCES`` or ``TRIGGER``, and no ownership.
    """
    with owner_connection(alias) as connection:
        # A PostgreSQL feature, not a speed-up: roles and grants.
        if connection.vendor != "postgresql":
            raise AppRoleError(
                "database roles are PostgreSQL's: the embedded SQLite database has none"
            )
        grants = AppRoleGrants(role=role)
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            _check_role(cursor, role)

            def quote(name: str) -> str:
                # Escapes quotes inside the name too (Django's quote_name does not).
                return psycopg2.extensions.quote_ident(name, cursor.cursor)

            (database, schema) = _one(cursor, "SELECT current_database(), current_schema()")
            who = quote(role)
            where = quote(str(schema))
            cursor.execute(f"GRANT CONNECT ON DATABASE {quote(str(database))} TO {who}")
            cursor.execute(f"GRANT USAGE ON SCHEMA {where} TO {who}")
            for kind in ("TABLES", "SEQUENCES", "FUNCTIONS"):
                cursor.execute(f"REVOKE ALL ON ALL {kind} IN SCHEMA {where} FROM {who}")
            cursor.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
                "ORDER BY c.relname"
            )
            for (table,) in cursor.fetchall():
                if table in APPEND_ONLY_TABLES:
                    privileges, bucket = "SELECT, INSERT", grants.append_only
                elif table in READ_ONLY_TABLES:
                    privileges, bucket = "SELECT", grants.read_only
                else:
                    privileges, bucket = "SELECT, INSERT, UPDATE, DELETE", grants.read_write
                cursor.execute(f"GRANT {privileges} ON TABLE {where}.{quote(table)} TO {who}")
                bucket.append(table)
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {who}")
            (grants.sequences,) = _one(  # type: ignore[assignment]
                cursor,
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'S'",
            )
            cursor.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = current_schema() AND p.prosecdef ORDER BY 1"
            )
            for (function,) in cursor.fetchall():
                # regprocedure text is already quoted where needed.
                cursor.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {who}")
                grants.functions.append(function)
        return grants
