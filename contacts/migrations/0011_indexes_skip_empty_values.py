"""Five indexes leave out the rows they never find.

The event-id unique constraints of touches, consents and disclosures hold only
rows that carry an external id (NULLs never clash, so uniqueness is unchanged);
the ``qualified`` index holds the qualified, the rows looked for; and a merged
contact's index holds the merged, in place of the foreign key's own index of
every contact. A form post, a hand-entered touch and every new person wrote an
entry into each of them for nothing.

The foreign key stays as it is: only its index is replaced (altering the field
in the database would drop and re-add the constraint, checking every row again
under a lock).
"""

import django.db.models.deletion
from django.db import migrations, models

# Django's name for the index it made with the foreign key (0001_initial).
_MERGED_INTO_INDEX = "contacts_contact_merged_into_id_940ac4a0"


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0010_campaign_utm_campaign_index"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="consent", name="consent_event_unique"),
        migrations.AddConstraint(
            model_name="consent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("event_external_id__isnull", False)),
                fields=("event_source_system", "event_external_id"),
                name="consent_event_unique",
            ),
        ),
        migrations.RemoveConstraint(model_name="disclosure", name="disclosure_event_unique"),
        migrations.AddConstraint(
            model_name="disclosure",
            constraint=models.UniqueConstraint(
                condition=models.Q(("event_external_id__isnull", False)),
                fields=("event_source_system", "event_external_id"),
                name="disclosure_event_unique",
            ),
        ),
        migrations.RemoveConstraint(model_name="touch", name="touch_external_id_unique"),
        migrations.AddConstraint(
            model_name="touch",
            constraint=models.UniqueConstraint(
                condition=models.Q(("external_id__isnull", False)),
                fields=("source_system", "external_id"),
                name="touch_external_id_unique",
            ),
        ),
        migrations.RemoveIndex(model_name="contact", name="contact_qualified"),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(
                condition=models.Q(("qualified", True)),
                fields=["qualified"],
                name="contact_qualified",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="contact",
                    name="merged_into",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="merged_from",
                        to="contacts.contact",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{_MERGED_INTO_INDEX}"',
                    reverse_sql=(
                        f'CREATE INDEX "{_MERGED_INTO_INDEX}" '
                        'ON "contacts_contact" ("merged_into_id")'
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(
                condition=models.Q(("merged_into__isnull", False)),
                fields=["merged_into"],
                name="contact_merged_into",
            ),
        ),
    ]
