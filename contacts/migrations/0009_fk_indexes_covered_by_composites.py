"""Three foreign keys lose their own index: a composite index leads with each.

Every form post wrote those index entries for nothing. Only the indexes go: the
constraints stay as they are (altering the fields in the database would drop and
re-add each constraint, checking every row again under a lock).
"""

import django.db.models.deletion
from django.db import migrations, models

# Django's names for the indexes it made with each foreign key (0001_initial).
_INDEXES = (
    "contacts_consent_contact_id_e3883c86",
    "contacts_contact_organization_id_1f9763f9",
    "contacts_disclosure_contact_id_f9439314",
)


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0008_touch_index_covers_attribution_reads"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="consent",
                    name="contact",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="consents",
                        to="contacts.contact",
                    ),
                ),
                migrations.AlterField(
                    model_name="contact",
                    name="organization",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="contacts",
                        to="contacts.organization",
                    ),
                ),
                migrations.AlterField(
                    model_name="disclosure",
                    name="contact",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="disclosures",
                        to="contacts.contact",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[f'DROP INDEX IF EXISTS "{name}"' for name in _INDEXES],
                    reverse_sql=[
                        'CREATE INDEX "contacts_consent_contact_id_e3883c86" '
                        'ON "contacts_consent" ("contact_id")',
                        'CREATE INDEX "contacts_contact_organization_id_1f9763f9" '
                        'ON "contacts_contact" ("organization_id")',
                        'CREATE INDEX "contacts_disclosure_contact_id_f9439314" '
                        'ON "contacts_disclosure" ("contact_id")',
                    ],
                ),
            ],
        ),
    ]
