"""API tokens move to django-rest-knox, which stores a digest of each key, never the key.

Keys issued before (DRF's ``authtoken_token``, plain text) are carried over as
knox digests, so the systems holding them keep working, with a fresh expiry of
``API_TOKEN_TTL_DAYS`` from this migration; then the plain table is dropped
and DRF authtoken's migration records with it. Run ``issue_token NAME
--rotate`` to replace a carried-over key.
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS

PLAIN_TABLE = "authtoken_token"


def plain_tokens_to_digests(apps, schema_editor):
    connection = schema_editor.connection
    if PLAIN_TABLE not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {PLAIN_TABLE}")  # noqa: S608 -- a constant
        rows = cursor.fetchall()
    auth_token = apps.get_model("knox", "AuthToken")
    expiry = timezone.now() + timedelta(days=settings.API_TOKEN_TTL_DAYS)
    auth_token.objects.bulk_create(
        [
            auth_token(
                digest=hash_token(key),
                token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
                user_id=user_id,
                expiry=expiry,
            )
            for key, user_id in rows
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {PLAIN_TABLE}")
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("leadrecord", "0005_ledger_actor_not_indexed"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    # Backwards: the digests stay; plain keys cannot be recovered from them.
    operations = [migrations.RunPython(plain_tokens_to_digests, migrations.RunPython.noop)]
