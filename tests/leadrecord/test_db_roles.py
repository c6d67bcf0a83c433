"""The database protects the ledger from the application: its role owns nothing and may
only read and insert there, yet every write path of the product works as that role."""

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Contact
from handoff.models import Handoff
from leadrecord.db_roles import AppRoleError, app_role_grant
from leadrecord.ledger import ledger_verify
from leadrecord.ledger_guard import LEDGER_TABLE
from leadrecord.models import LedgerEntry
from reports.aggregates import people_aggregates_update
from reports.models import AttributionRun, RunStatus

from ..app_role import APP_ROLE, app_role_dsn, app_role_ensure, connected_as_app_role
from ..ledger_helpers import append_entries
from ..workers import ROOT, test_database_url

pytestmark = pytest.mark.postgres

ATTACKS = [
    f"ALTER TABLE {LEDGER_TABLE} DISABLE TRIGGER USER",
    f"ALTER TABLE {LEDGER_TABLE} DISABLE TRIGGER ALL",
    f"ALTER TABLE {LEDGER_TABLE} DISABLE TRIGGER {LEDGER_TABLE}_no_update_delete",
    f"DROP TRIGGER {LEDGER_TABLE}_no_update_delete ON {LEDGER_TABLE}",
    f"ALTER TABLE {LEDGER_TABLE} DROP CONSTRAINT ledger_prev_hash_unique",
    f"ALTER TABLE {LEDGER_TABLE} OWNER TO CURRENT_USER",
    f"CREATE TRIGGER sneak BEFORE INSERT ON {LEDGER_TABLE} "
    f"FOR EACH ROW EXECUTE FUNCTION {LEDGER_TABLE}_refuse_change()",
    f"UPDATE {LEDGER_TABLE} SET reason = 'rewritten' WHERE seq = 1",
    f"UPDATE {LEDGER_TABLE} SET reason = 'rewritten'",
    f"DELETE FROM {LEDGER_TABLE} WHERE seq = 1",
    f"DELETE FROM {LEDGER_TABLE}",
    f"TRUNCATE {LEDGER_TABLE}",
    f"SELECT * FROM {LEDGER_TABLE} FOR UPDATE",
    f"DROP TABLE {LEDGER_TABLE}",
    f"ALTER TABLE {LEDGER_TABLE} RENAME TO old_ledger",
    "UPDATE leadrecord_ledgercheckpoint SET seq = 0",
    "DELETE FROM leadrecord_ledgercheckpoint",
    "TRUNCATE leadrecord_ledgercheckpoint",
    "DELETE FROM django_migrations",
    "TRUNCATE contacts_contact",
    "ALTER TABLE contacts_contact DISABLE TRIGGER ALL",
]


@pytest.fixture
def app_cursor(db: None) -> Iterator[Any]:
    """A cursor of the application's role, on its own connection (autocommit, so each
    statement stands alone)."""
    app_role_ensure()
    append_entries(3)
    app = psycopg2.connect(app_role_dsn())
    app.autocommit = True
    try:
        with app.cursor() as cursor:
            yield cursor
    finally:
        app.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("statement", ATTACKS)
def test_the_application_role_cannot_alter_or_rewrite_the_ledger(app_cursor, statement):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        app_cursor.execute(statement)
    assert LedgerEntry.objects.count() == 3
    assert ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_the_application_role_reads_and_appends_and_owns_nothing(app_cursor):
    app_cursor.execute(f"SELECT count(*) FROM {LEDGER_TABLE}")
    assert app_cursor.fetchone() == (3,)
    app_cursor.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND pg_get_userbyid(c.relowner) = current_user"
    )
    assert app_cursor.fetchone() == (0,)
    app_cursor.execute(
        "SELECT has_table_privilege(current_user, %s, 'TRUNCATE'), "
        "has_table_privilege(current_user, %s, 'TRIGGER'), "
        "has_table_privilege(current_user, %s, 'REFERENCES'), "
        "has_table_privilege(current_user, %s, 'INSERT')",
        [LEDGER_TABLE] * 4,
    )
    assert app_cursor.fetchone() == (False, False, False, True)


@pytest.mark.django_db(transaction=True)
def test_the_main_write_paths_work_as_the_application_role(users, api_client_for):
    """A touch, bulk events (COPY), a handoff, an erasure, an attribution run, the report
    aggregates' update (their ANALYZE included), the demo data set and a checkpoint, all as
    the app."""
    app_role_ensure()
    # Tokens made as the owner; every request below runs as the app's role.
    clients: dict[str, APIClient] = {role: api_client_for(user) for role, user in users.items()}
    api = clients.__getitem__
    with connected_as_app_role():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone() == (APP_ROLE,)

        call_command("seed_demo", contacts=12, seed=3, stdout=io.StringIO())
        touch = api("marketer").post(
            "/api/v1/touches/",
            {"contact_email": "role@example.com", "channel": "web", "kind": "visit"},
            format="json",
        )
        assert touch.status_code == 201, touch.content
        occurred = (timezone.now() - timedelta(hours=1)).isoformat()
        events = api("integration").post(
            "/api/v1/events/",
            {
                "events": [
                    {
                        "type": "touch",
                        "source_system": "crm",
                        "external_id": f"role-{n}",
                        "occurred_at": occurred,
                        "contact": {"email": f"bulk{n}@example.com"},
                        "channel": "email",
                        "kind": "email_click",
                    }
                    for n in range(120)
                ]
            },
            format="json",
        )
        assert events.status_code == 200, events.content
        assert events.json()["created"] == 120, events.json()["results"][:2]
        person = Contact.objects.get(email="bulk1@example.com")
        consent = api("marketer").post(
            f"/api/v1/contacts/{person.pk}/consents/",
            {"purpose": "sales_contact", "granted": True, "source": "call"},
            format="json",
        )
        assert consent.status_code == 201, consent.content
        handoff = api("marketer").post("/api/v1/handoffs/", {"contact": person.pk}, format="json")
        assert handoff.status_code == 201, handoff.content
        accept = api("sales_rep").post(f"/api/v1/handoffs/{handoff.json()['id']}/accept/", {})
        assert accept.status_code == 200, accept.content
        erase = api("privacy_officer").post(
            f"/api/v1/contacts/{Contact.objects.get(email='bulk2@example.com').pk}/erase/"
        )
        assert erase.status_code == 200, erase.content
        run = api("manager").post("/api/v1/attribution/runs/")
        assert run.status_code == 202, run.content
        assert AttributionRun.objects.get(pk=run.json()["id"]).status == RunStatus.COMPLETE
        # The report aggregates: rebuilt by the first update (with the owner's ANALYZE),
        # then moved by the next one.
        assert people_aggregates_update() is not None
        again = api("marketer").post(
            "/api/v1/touches/",
            {"contact_email": "role@example.com", "channel": "email", "kind": "visit"},
            format="json",
        )
        assert again.status_code == 201, again.content
        assert people_aggregates_update() is not None
        assert Handoff.objects.filter(contact=person).exists()
        assert ledger_verify().ok
    with connection.cursor() as cursor:
        # Fresh statistics came from the owner's function the app may execute.
        cursor.execute(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname = 'reports_touchday'"
        )
        assert cursor.fetchone() == (True,)


@pytest.mark.django_db
def test_grant_app_role_refuses_roles_it_cannot_limit():
    app_role_ensure()
    with pytest.raises(AppRoleError, match="no database role"):
        app_role_grant(role="no_such_role_anywhere")
    with pytest.raises(AppRoleError, match="superuser"):
        app_role_grant(role=connection.settings_dict["USER"])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE lr_test_owned (id int)")
        cursor.execute(f'ALTER TABLE lr_test_owned OWNER TO "{APP_ROLE}"')
    with pytest.raises(AppRoleError, match="owns lr_test_owned"):
        app_role_grant(role=APP_ROLE)
    with pytest.raises(CommandError, match="owns lr_test_owned"):
        call_command("grant_app_role", APP_ROLE)


@pytest.mark.django_db
def test_a_role_name_with_quotes_is_quoted_not_run():
    odd = 'lr app"; DROP TABLE leadrecord_ledgerentry; --'
    with connection.cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN EXECUTE format('CREATE ROLE %%I', %s); "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
            [odd],
        )
    grants = app_role_grant(role=odd)
    assert LEDGER_TABLE in grants.append_only
    with connection.cursor() as cursor:
        cursor.execute("SELECT has_table_privilege(%s, %s, 'INSERT')", [odd, LEDGER_TABLE])
        assert cursor.fetchone() == (True,)
    assert LedgerEntry.objects.count() == 0  # the table is still there


@pytest.mark.django_db
def test_grant_app_role_is_exact_and_idempotent(capsys):
    app_role_ensure()
    with connection.cursor() as cursor:
        # A privilege beyond what the app needs, given by hand, is taken back.
        cursor.execute(f'GRANT UPDATE, DELETE, TRUNCATE ON {LEDGER_TABLE} TO "{APP_ROLE}"')
    call_command("grant_app_role", APP_ROLE)
    call_command("grant_app_role", APP_ROLE)
    out = capsys.readouterr().out
    assert f"SELECT, INSERT on leadrecord_ledgercheckpoint, {LEDGER_TABLE} (append-only)" in out
    assert "reports_people_aggregates_analyze()" in out
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s AND table_name = %s ORDER BY 1",
            [APP_ROLE, LEDGER_TABLE],
        )
        assert [row[0] for row in cursor.fetchall()] == ["INSERT", "SELECT"]
        cursor.execute(
            "SELECT DISTINCT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s ORDER BY 1",
            [APP_ROLE],
        )
        assert [row[0] for row in cursor.fetchall()] == ["DELETE", "INSERT", "SELECT", "UPDATE"]


def _psql_owner(database: str, sql: str) -> None:
    owner = psycopg2.connect(
        psycopg2.extensions.make_dsn(
            dbname=database,
            user=connection.settings_dict["USER"],
            password=connection.settings_dict["PASSWORD"] or None,
            host=connection.settings_dict["HOST"] or None,
            port=connection.settings_dict["PORT"] or None,
        )
    )
    owner.autocommit = True
    try:
        with owner.cursor() as cursor:
            cursor.execute(sql)
    finally:
        owner.close()


@pytest.mark.django_db
def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def _tables_owners(url: str) -> list[tuple[str]]:
    app = psycopg2.connect(url)
    try:
        with app.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
            return cursor.fetchall()
    finally:
        app.close()


@pytest.mark.django_db
def test_migrate_and_restore_use_the_owner_of_migrate_database_url(tmp_path):
    """On fresh databases: as the app's role alone, migrate (or restore) cannot create a
    table; with MIGRATE_DATABASE_URL they run as the owner, who then owns every table, and
    the app's role works after grant_app_role (a backup too)."""
    app_role_ensure()
    owner = connection.settings_dict["USER"]
    base = test_database_url().rsplit("/", 1)[0]
    server = base.split("@", 1)[1]
    name = connection.settings_dict["NAME"]
    migrated, restored = f"{name}_roles", f"{name}_roles_restored"
    for database in (migrated, restored):
        _psql_owner("postgres", f'DROP DATABASE IF EXISTS "{database}"')
        _psql_owner("postgres", f'CREATE DATABASE "{database}"')
        # PostgreSQL before 15 lets anyone create tables in public: refuse it as 15 does.
        _psql_owner(database, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    env = {**os.environ, "CONN_MAX_AGE": "0", "MIGRATE_DATABASE_URL": ""}
    app_env = {**env, "DATABASE_URL": f"postgres://{APP_ROLE}@{server}/{migrated}"}
    owner_env = {**app_env, "MIGRATE_DATABASE_URL": f"{base}/{migrated}"}
    try:
        alone = _manage(app_env, "migrate", "--noinput")
        assert alone.returncode != 0
        assert "permission denied for schema public" in alone.stderr
        done = _manage(owner_env, "migrate", "--noinput")
        assert done.returncode == 0, done.stderr
        granted = _manage(owner_env, "grant_app_role", APP_ROLE)
        assert granted.returncode == 0, granted.stderr
        assert _manage(app_env, "verify_ledger").stdout == "ledger ok: 0 entries\n"
        assert _tables_owners(app_env["DATABASE_URL"]) == [(owner,)]

        backup = tmp_path / "backup.dump"
        written = _manage(app_env, "backup", str(backup))
        assert written.returncode == 0, written.stderr
        app_env["DATABASE_URL"] = f"postgres://{APP_ROLE}@{server}/{restored}"
        owner_env = {**app_env, "MIGRATE_DATABASE_URL": f"{base}/{restored}"}
        alone = _manage(app_env, "restore", str(backup))
        assert alone.returncode != 0
        loaded = _manage(owner_env, "restore", str(backup))
        assert loaded.returncode == 0, loaded.stderr
        assert _tables_owners(app_env["DATABASE_URL"]) == [(owner,)]
        assert _manage(app_env, "verify_ledger").returncode != 0  # no grants yet
        assert _manage(owner_env, "grant_app_role", APP_ROLE).returncode == 0
        assert _manage(app_env, "verify_ledger").stdout == "ledger ok: 0 entries\n"
    finally:
        for database in (migrated, restored):
            _psql_owner("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
