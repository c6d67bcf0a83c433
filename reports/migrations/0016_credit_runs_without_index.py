"""A run's credits go without an index: building one was a large part of every run.

Every reader of single credit rows asks which conversions a run credited (an
anti-join over the run's own partition, once per run in the report update, or
per request until it has run), and a hash join over the partition answers that
without an index. The daily sums (``AttributionDaily``) answer every report.
The owner's function that indexed a run's table now only analyzes it, under a
name that says so.
"""

from django.db import migrations

_ANALYZE = """
DROP FUNCTION IF EXISTS reports_credit_run_table_index(bigint);
CREATE OR REPLACE FUNCTION reports_credit_run_table_analyze(run bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    EXECUTE format('ANALYZE %I', 'reports_attributioncredit_run_' || run);
END
$$;
REVOKE ALL ON FUNCTION reports_credit_run_table_analyze(bigint) FROM PUBLIC;
"""
_INDEX = """
DROP FUNCTION IF EXISTS reports_credit_run_table_analyze(bigint);
CREATE OR REPLACE FUNCTION reports_credit_run_table_index(run bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    name text := 'reports_attributioncredit_run_' || run;
BEGIN
    SET LOCAL maintenance_work_mem = '256MB';
    EXECUTE format(
        'CREATE INDEX %I ON %I (run_id, model, converted_at)', name || '_model_time', name
    );
    EXECUTE format('ANALYZE %I', name);
END
$$;
REVOKE ALL ON FUNCTION reports_credit_run_table_index(bigint) FROM PUBLIC;
"""


def analyze_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Without parameters, so the functions' format() placeholders stay as written.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(_ANALYZE)


def index_again(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(_INDEX)


class Migration(migrations.Migration):
    dependencies = [("reports", "0015_credit_run_tables_as_owner")]

    operations = [
        migrations.RemoveIndex(model_name="attributioncredit", name="credit_run_model_time"),
        migrations.RunPython(analyze_only, index_again),
    ]
