"""Indexes that leave out the rows they never find (contacts migration 0011).

Rows without an external id stay out of the event-id unique indexes, unqualified people
out of the ``qualified`` index, unmerged people out of the merged-into index. The
lookups that need them still go through them (planned on PostgreSQL with sequential
scans priced out, so a plan shows what the indexes allow), and uniqueness holds as
before.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.models import Channel, Contact, Touch
from events.ingest import _pairs_known
from tests.factories import contact_make
from tests.plans import plan_without_scans

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _predicates() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)",
            [
                [
                    "touch_external_id_unique",
                    "consent_event_unique",
                    "disclosure_event_unique",
                    "contact_qualified",
                    "contact_merged_into",
                ]
            ],
        )
        return {name: definition.split(" WHERE ", 1)[-1] for name, definition in cursor}


def test_each_index_holds_only_the_rows_it_is_for():
    assert _predicates() == {
        "touch_external_id_unique": "(external_id IS NOT NULL)",
        "consent_event_unique": "(event_external_id IS NOT NULL)",
        "disclosure_event_unique": "(event_external_id IS NOT NULL)",
        "contact_qualified": "qualified",
        "contact_merged_into": "(merged_into_id IS NOT NULL)",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'contacts_contact' "
            "AND indexdef LIKE '%%(merged_into_id)%%'"
        )
        # The foreign key's own index of every contact is gone.
        assert cursor.fetchone()[0] == 1


def test_an_events_repeat_is_still_found_through_the_unique_indexes():
    with CaptureQueriesContext(connection) as queries:
        assert _pairs_known({("crm", "t-1")}) == []
    (sql,) = [query["sql"] for query in queries.captured_queries]
    plan = plan_without_scans(sql)
    for name in ("touch_external_id_unique", "consent_event_unique", "disclosure_event_unique"):
        assert name in plan, plan


def test_a_pair_stays_unique_and_touches_without_one_never_clash():
    person = contact_make()
    web = Channel.objects.get(key="web")
    now = timezone.now()

    def touch(external_id: str | None) -> Touch:
        return Touch.objects.create(
            contact=person,
            channel=web,
            occurred_at=now,
            recorded_at=now,
            source_system="crm" if external_id else "",
            external_id=external_id,
        )

    touch(None)
    touch(None)
    touch("t-1")
    assert _pairs_known({("crm", "t-1"), ("crm", "t-2")}) == [
        ("crm", "t-1", Touch.objects.get(external_id="t-1").pk)
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        touch("t-1")


def test_the_qualified_and_the_merged_are_found_through_their_indexes():
    person = contact_make()
    qualified = str(Contact.objects.filter(qualified=True).values("id").query)
    assert "contact_qualified" in plan_without_scans(qualified)
    merged = Contact.objects.filter(merged_into=person).values("id").query
    sql, params = merged.sql_with_params()
    assert "contact_merged_into" in plan_without_scans(sql, params)
