"""Database triggers that make the ledger table append-only.

Installed by migration ``0002``; the test suite lifts them only around the
table flush that transactional tests need (and to play an attacker who has
database access).
"""

from django.db.backends.base.base import BaseDatabaseWrapper

LEDGER_TABLE = "leadrecord_ledgerentry"

_POSTGRES_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION {LEDGER_TABLE}_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the ledger is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    f"""
    CREATE OR REPLACE TRIGGER {LEDGER_TABLE}_no_update_delete
    BEFORE UPDATE OR DELETE ON {LEDGER_TABLE}
    FOR EACH ROW EXECUTE FUNCTION {LEDGER_TABLE}_refuse_change()
    """,
    f"""
    CREATE OR REPLACE TRIGGER {LEDGER_TABLE}_no_truncate
    BEFORE TRUNCATE ON {LEDGER_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {LEDGER_TABLE}_refuse_change()
    """,
]
_POSTGRES_REMOVE = [
    f"DROP TRIGGER IF EXISTS {LEDGER_TABLE}_no_update_delete ON {LEDGER_TABLE}",
    f"DROP TRIGGER IF EXISTS {LEDGER_TABLE}_no_truncate ON {LEDGER_TABLE}",
]

_SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER IF NOT EXISTS {LEDGER_TABLE}_no_update
    BEFORE UPDATE ON {LEDGER_TABLE}
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS {LEDGER_TABLE}_no_delete
    BEFORE DELETE ON {LEDGER_TABLE}
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: DELETE refused'); END
    """,
]
_SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {LEDGER_TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {LEDGER_TABLE}_no_delete",
]


def _statements(connection: BaseDatabaseWrapper, *, install: bool) -> list[str]:
    # Database features, not speed-ups: each database's own triggers keep the ledger
    # append-only, so each needs its own statements.
    if connection.vendor == "postgresql":
        return _POSTGRES_INSTALL if install else _POSTGRES_REMOVE
    if connection.vendor == "sqlite":
        return _SQLITE_INSTALL if install else _SQLITE_REMOVE
    raise NotImplementedError(f"no append-only guard for {connection.vendor}")


def ledger_guard_install(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in _statements(connection, install=True):
            cursor.execute(statement)


def ledger_guard_remove(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in _statements(connection, install=False):
            cursor.execute(statement)
