from django.conf import settings
from django.db import migrations, models

from leadrecord.ledger_guard import ledger_guard_install


def guard_again(apps, schema_editor):
    # SQLite changes a constraint by rebuilding the table, which drops its
    # triggers (as 0004 and 0005 did): install the append-only guard again.
    ledger_guard_install(schema_editor.connection)


class Migration(migrations.Migration):
    """The person on record as an actor: a form they sent, a change in their portal."""

    dependencies = [
        ("leadrecord", "0008_periodic_claims"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="ledgerentry",
            name="ledger_actor_kind_valid",
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="actor_kind",
            field=models.CharField(
                choices=[
                    ("user", "User"),
                    ("integration", "Integration"),
                    ("system", "System"),
                    ("person", "The person"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.CheckConstraint(
                condition=models.Q(("actor_kind__in", ["user", "integration", "system", "person"])),
                name="ledger_actor_kind_valid",
            ),
        ),
        migrations.RunPython(guard_again, migrations.RunPython.noop),
    ]
