"""Several row counts, or several small lists of rows, in one query.

A report page asks many small counts of different tables (people at each stage, each
leak); each costs a round trip to the database and, while the machine is busy (events
streaming in on the same cores), a wait for the database's turn. ``count_each`` asks them
as scalar subqueries of one statement: the same counts, each on its own plan;
``rows_each`` does the same for lists of rows (the funnel's stage entries).
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
        compiled = _compiled(rows)
        if compiled is None:
            parts.append("0")
            continue
        sql, part_params = compiled
        parts.append(f"(SELECT count(*) FROM ({sql}) AS counted_{index})")  # noqa: S608
        params.extend(part_params)
    if not params and all(part == "0" for part in parts):
        return [0] * len(parts)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return [int(value) for value in row]


def rows_each(*querysets: QuerySet[Any]) -> list[list[tuple[Any, ...]]]:
    """``[list(queryset) for queryset in querysets]`` of ``values_list`` querysets (fields
    first, then annotations, as Django selects them), in one query on PostgreSQL: each
    part's columns come back as arrays of one row (``array_agg`` of each column over the
    same rows, so they line up), and the parts side by side. Elsewhere one query each."""
    columns_of: list[list[str]] = []
    for queryset in querysets:
        names = [*queryset.query.values_select, *queryset.query.annotation_select]
        if not names or list(getattr(queryset, "_fields", None) or ()) != names:
            raise ValueError("rows_each reads values_list querysets of fields, then annotations")
        columns_of.append(names)
    if connection.vendor != "postgresql":
        return [list(queryset) for queryset in querysets]
    found: list[list[tuple[Any, ...]]] = [[] for _ in querysets]
    read: list[tuple[int, int]] = []  # (part, its number of columns), in the row's order
    parts: list[str] = []
    params: list[Any] = []
    for index, (queryset, names) in enumerate(zip(querysets, columns_of, strict=True)):
        compiled = _compiled(queryset)
        if compiled is None:
            continue
        sql, part_params = compiled
        aggregated = ", ".join(
            f"array_agg(part_{index}.{connection.ops.quote_name(name)})" for name in names
        )
        parts.append(f"(SELECT {aggregated} FROM ({sql}) AS part_{index}) AS arrays_{index}")  # noqa: S608
        params.extend(part_params)
        read.append((index, len(names)))
    if not parts:
        return found
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM " + " CROSS JOIN ".join(parts), params)  # noqa: S608
        row = cursor.fetchone()
    column = 0
    for index, width in read:
        columns = row[column : column + width]
        column += width
        if columns[0] is not None:  # array_agg of no rows is NULL
            found[index] = list(zip(*columns, strict=True))
    return found


def _compiled(queryset: QuerySet[Any]) -> tuple[str, tuple[Any, ...]] | None:
    """The queryset's own compiled SQL and its values (as parameters), or None for one
    that matches nothing by construction (an empty list of ids): no rows, no query."""
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return None
    return sql, tuple(params)
