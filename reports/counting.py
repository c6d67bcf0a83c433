"""Several row counts in one query.

A report page asks many small counts of different tables (people at each stage, each
leak); each costs a round trip to the database and, while the machine is busy (events
streaming in on the same cores), a wait for the database's turn. ``count_each`` asks them
as scalar subqueries of one statement: the same counts, each on its own plan.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet


def count_each(*querysets: QuerySet[Any]) -> list[int]:
    """``[queryset.count() for queryset in querysets]``, in one query (a queryset of
    ``values(...)`` with ``distinct()`` counts its distinct rows, as ``count()`` does)."""
    if not querysets:
        return []
    parts: list[str] = []
    params: list[Any] = []
    for index, queryset in enumerate(querysets):
        rows = queryset.order_by()
        if not rows.query.values_select and not rows.query.annotation_select:
            # Any one column: the rows are counted, not read.
            rows = rows.values("pk")
        try:
            sql, part_params = rows.query.sql_with_params()
        except EmptyResultSet:
            # A filter that matches nothing (an empty list of ids): no rows, no query.
            parts.append("0")
            continue
        # The querysets' own compiled SQL, values as parameters.
        parts.append(f"(SELECT count(*) FROM ({sql}) AS counted_{index})")  # noqa: S608
        params.extend(part_params)
    if not params and all(part == "0" for part in parts):
        return [0] * len(parts)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return [int(value) for value in row]
