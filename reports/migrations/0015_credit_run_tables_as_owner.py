"""Functions that create, index, attach and drop a run's credit table with the owner's rights.

Only a table's owner may attach a partition to it or drop it, and the
application's database role owns no table and may create none
(docs/ledger-integrity.md). A run's credits go to a table of its own
(``reports.credit_store``), so the run calls these ``SECURITY DEFINER``
functions, which touch ``reports_attributioncredit`` and its per-run tables and
nothing else; the new table is granted to the calling role for its load.
``EXECUTE`` is revoked from ``PUBLIC``: ``grant_app_role`` grants it to the
application's role. SQLite has one plain credits table: nothing to do.
"""

from django.db import migrations

_CREATE = """
CREATE OR REPLACE FUNCTION reports_credit_run_table_create(run bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    name text := 'reports_attributioncredit_run_' || run;
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', name);
    EXECUTE format(
        'CREATE TABLE %I (LIKE reports_attributioncredit INCLUDING DEFAULTS, '
        'CONSTRAINT %I CHECK (run_id IS NOT NULL AND run_id = %s))',
        name, name || '_bound', run
    );
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON TABLE %I TO %I', name, session_user);
END
$$;
REVOKE ALL ON FUNCTION reports_credit_run_table_create(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION reports_credit_run_table_index(run bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    name text := 'reports_attributioncredit_run_' || run;
BEGIN
    -- Sorted in memory, not in runs on disk: a run's table is millions of rows.
    SET LOCAL maintenance_work_mem = '256MB';
    EXECUTE format(
        'CREATE INDEX %I ON %I (run_id, model, converted_at)', name || '_model_time', name
    );
    EXECUTE format('ANALYZE %I', name);
END
$$;
REVOKE ALL ON FUNCTION reports_credit_run_table_index(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION reports_credit_run_table_attach(run bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    EXECUTE format(
        'ALTER TABLE reports_attributioncredit ATTACH PARTITION %I FOR VALUES IN (%s)',
        'reports_attributioncredit_run_' || run, run
    );
END
$$;
REVOKE ALL ON FUNCTION reports_credit_run_table_attach(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION reports_credit_run_table_drop(run bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', 'reports_attributioncredit_run_' || run);
END
$$;
REVOKE ALL ON FUNCTION reports_credit_run_table_drop(bigint) FROM PUBLIC;
"""
_DROP = """
DROP FUNCTION IF EXISTS reports_credit_run_table_create(bigint);
DROP FUNCTION IF EXISTS reports_credit_run_table_index(bigint);
DROP FUNCTION IF EXISTS reports_credit_run_table_attach(bigint);
DROP FUNCTION IF EXISTS reports_credit_run_table_drop(bigint);
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Without parameters, so the functions' format() placeholders stay as written.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(_CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_DROP)


class Migration(migrations.Migration):
    dependencies = [("reports", "0014_run_partitions_loaded_once")]

    operations = [migrations.RunPython(create, drop)]
