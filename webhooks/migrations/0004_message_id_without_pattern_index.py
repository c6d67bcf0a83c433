"""A message's id keeps its primary key index only.

Django gives a character primary key on PostgreSQL a second index for ``LIKE``
searches (``varchar_pattern_ops``). Nothing searches message ids by pattern,
and each index is paid on every outbox row a bulk batch writes.
"""

from django.db import migrations

_FIND = """
SELECT indexname FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = 'webhooks_message'
AND indexdef LIKE '%%varchar_pattern_ops%%'
"""


def pattern_index_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(_FIND)
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


def pattern_index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    message = apps.get_model("webhooks", "Message")
    field = message._meta.get_field("id")
    for statement in [schema_editor._create_like_index_sql(message, field)]:
        if statement is not None:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0003_message_endpoint_without_a_database_foreign_key")]

    operations = [migrations.RunPython(pattern_index_drop, pattern_index_create)]
