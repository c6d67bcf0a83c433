"""Several counts in one query: each equals the queryset's own ``count()``."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Min
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact, Touch
from reports.counting import count_each, rows_each
from tests.factories import contact_make

from .conftest import DAY, touch

pytestmark = pytest.mark.django_db


def test_each_count_is_the_querysets_own_in_one_query():
    ada, bo = contact_make(organization="acme.example"), contact_make()
    contact_make(organization="acme.example")
    for _ in range(3):
        touch(ada, "web", DAY)
    touch(bo, "email", 2 * DAY)
    querysets = [
        Contact.objects.all(),
        Contact.objects.filter(organization__domain="acme.example"),
        Touch.objects.values("contact_id").distinct(),
        Touch.objects.filter(contact=ada).order_by("-occurred_at"),
        Contact.objects.filter(id__in=Touch.objects.values("contact_id")),
        Touch.objects.filter(channel__key="nowhere"),
    ]
    expected = [queryset.count() for queryset in querysets]
    with CaptureQueriesContext(connection) as queries:
        counted = count_each(*querysets)
    assert counted == expected == [3, 2, 2, 3, 2, 0]
    assert len(queries.captured_queries) == 1


def test_a_queryset_that_matches_nothing_by_construction_is_zero_without_a_query():
    contact_make()
    with CaptureQueriesContext(connection) as queries:
        assert count_each(Contact.objects.filter(id__in=[]), Contact.objects.none()) == [0, 0]
        assert count_each() == []
    assert queries.captured_queries == []
    assert count_each(Contact.objects.filter(id__in=[]), Contact.objects.all()) == [0, 1]


def test_hostile_values_are_parameters_not_sql():
    contact_make(organization="acme.example")
    hostile = "x') OR 1=1; DROP TABLE contacts_contact; --"
    assert count_each(Contact.objects.filter(organization__domain=hostile)) == [0]
    assert Contact.objects.count() == 1


def test_each_list_of_rows_is_the_querysets_own_in_one_query_on_postgresql():
    ada, bo = contact_make(organization="acme.example"), contact_make()
    touch(ada, "web", DAY)
    touch(ada, "email", 2 * DAY)
    touch(bo, "email", 3 * DAY)
    querysets = [
        Touch.objects.values("contact_id")
        .annotate(first=Min("occurred_at"))
        .values_list("contact_id", "first")
        .order_by(),
        Touch.objects.filter(contact=bo).values_list("occurred_at", "contact_id").order_by(),
        Touch.objects.filter(channel__key="nowhere").values_list("contact_id").order_by(),
        Touch.objects.filter(id__in=[]).values_list("contact_id").order_by(),
    ]
    expected = [sorted(queryset.all()) for queryset in querysets]
    with CaptureQueriesContext(connection) as queries:
        found = rows_each(*querysets)
    assert [sorted(rows) for rows in found] == expected
    assert [person for person, _ in expected[0]] == sorted([ada.pk, bo.pk])
    assert len(expected[1]) == 1 and expected[2] == [] and expected[3] == []
    # Elsewhere one query each (none for the list that matches nothing by construction).
    assert len(queries.captured_queries) == (1 if connection.vendor == "postgresql" else 3)


def test_rows_each_refuses_a_queryset_whose_columns_it_cannot_name():
    with pytest.raises(ValueError, match="values_list"):
        rows_each(Touch.objects.all())
    with pytest.raises(ValueError, match="values_list"):
        rows_each(
            Touch.objects.values("contact_id")
            .annotate(first=Min("occurred_at"))
            .values_list("first", "contact_id")
        )


def test_lists_that_match_nothing_by_construction_are_empty_without_a_query():
    contact_make()
    with CaptureQueriesContext(connection) as queries:
        assert rows_each(
            Touch.objects.filter(id__in=[]).values_list("contact_id"),
            Contact.objects.none().values_list("pk"),
        ) == [[], []]
    assert queries.captured_queries == []
