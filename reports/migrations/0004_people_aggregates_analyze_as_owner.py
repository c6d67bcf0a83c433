"""A function that refreshes the people aggregates' statistics with the owner's rights.

Only a table's owner may ``ANALYZE`` it, and the application's database role
owns no table (docs/ledger-integrity.md); the nightly rebuild calls this
``SECURITY DEFINER`` function instead, which analyzes these four tables and
nothing else. ``EXECUTE`` is revoked from ``PUBLIC``: ``grant_app_role`` grants
it to the application's role. SQLite keeps no such statistics: nothing to do.
"""

from django.db import migrations

_CREATE = """
CREATE OR REPLACE FUNCTION reports_people_aggregates_analyze() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    ANALYZE reports_touchday;
    ANALYZE reports_touchdaycount;
    ANALYZE reports_personmilestone;
    ANALYZE reports_createddaycount;
END
$$;
REVOKE ALL ON FUNCTION reports_people_aggregates_analyze() FROM PUBLIC;
"""
_DROP = "DROP FUNCTION IF EXISTS reports_people_aggregates_analyze()"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_DROP)


class Migration(migrations.Migration):
    dependencies = [("reports", "0003_people_counts")]

    operations = [migrations.RunPython(create, drop)]
