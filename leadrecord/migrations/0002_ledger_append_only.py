from django.db import migrations

from leadrecord.ledger_guard import ledger_guard_install, ledger_guard_remove


def install(apps, schema_editor):
    ledger_guard_install(schema_editor.connection)


def remove(apps, schema_editor):
    ledger_guard_remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("leadrecord", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
