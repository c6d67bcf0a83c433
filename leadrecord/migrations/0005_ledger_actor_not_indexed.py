import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from leadrecord.ledger_guard import ledger_guard_install


def guard_again(apps, schema_editor):
    # SQLite alters a column by rebuilding the table, which drops its
    # triggers (0004 did too): install the append-only guard again.
    ledger_guard_install(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("leadrecord", "0004_ledger_hash_not_indexed"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="ledgerentry",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(guard_again, migrations.RunPython.noop),
    ]
