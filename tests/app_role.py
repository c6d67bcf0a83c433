"""The application's database role in tests: created if missing, granted, connected as.

The suite itself connects as the owner (it migrates and flushes); these helpers
let a test act as the role the application runs as in production, which
``grant_app_role`` limits to reading and inserting on the ledger.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
from django.db import connection

from leadrecord.db_roles import app_role_grant

APP_ROLE = os.environ.get("LEADRECORD_TEST_APP_ROLE", "leadrecord_app")


def app_role_ensure() -> str:
    """Create the (cluster-wide) role if missing, and grant it on the test database."""
    with connection.cursor() as cursor:
        # Another run may create it at the same moment: a duplicate is fine.
        cursor.execute(
            "DO $$ BEGIN EXECUTE format('CREATE ROLE %%I LOGIN', %s); "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
            [APP_ROLE],
        )
    app_role_grant(role=APP_ROLE)
    return APP_ROLE


def app_role_dsn() -> str:
    settings = connection.settings_dict
    return psycopg2.extensions.make_dsn(
        dbname=settings["NAME"],
        user=APP_ROLE,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    )


@contextmanager
def connected_as_app_role() -> Iterator[None]:
    """Django's connection as the application's role, for the block (transactional tests:
    the owner's open transaction would otherwise hold what the block writes)."""
    saved = {name: connection.settings_dict[name] for name in ("USER", "PASSWORD")}
    connection.close()
    connection.settings_dict.update({"USER": APP_ROLE, "PASSWORD": ""})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)
