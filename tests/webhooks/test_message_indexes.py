"""The outbox's table carries only the indexes delivery and replay read through."""

import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_message_table_has_no_pattern_index_on_its_id():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = 'webhooks_message'"
        )
        indexes = dict(cursor.fetchall())
    assert not [name for name, definition in indexes.items() if "pattern_ops" in definition]
    assert set(indexes) == {
        "webhooks_message_pkey",
        "webhook_message_endpoint_sequence",
        "webhook_message_due",
        "webhook_message_person",
    }
