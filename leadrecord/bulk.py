"""Many rows in one INSERT, without building a model instance per row.

For the hot paths (event ingestion and its ledger entries) building Django
model instances and letting ``bulk_create`` prepare every value costs more
than the database work. On PostgreSQL this sends one ``INSERT ... VALUES``
with psycopg2's ``execute_values``; elsewhere it falls back to
``bulk_create``. Values must already be what the column stores (aware
datetimes, ``Decimal``, ``bytes``; JSON columns are named in ``json_columns``).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models
from psycopg2.extras import Json, execute_values


def rows_insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    returning_id: bool = False,
    json_columns: Collection[str] = (),
) -> list[int]:
    """Insert ``rows`` (values in ``columns`` order); returns their ids in order if asked."""
    if not rows:
        return []
    # PostgreSQL: execute_values (RETURNING ids in order), which bench/ingest.py's bulk
    # events need; elsewhere (the embedded SQLite default) Django's bulk_create.
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip(columns, row, strict=True))) for row in rows]
        model._default_manager.bulk_create(objects, batch_size=500)
        return [obj.pk for obj in objects] if returning_id else []
    json_positions = [index for index, name in enumerate(columns) if name in json_columns]
    if json_positions:
        adapted = []
        for row in rows:
            values = list(row)
            for index in json_positions:
                if values[index] is not None:
                    values[index] = Json(values[index])
            adapted.append(values)
        rows = adapted
    quote = connection.ops.quote_name
    column_names = ", ".join(
        quote(str(getattr(model._meta.get_field(name), "column", name))) for name in columns
    )
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({column_names}) VALUES %s"  # noqa: S608
    if returning_id:
        sql += f" RETURNING {quote(str(getattr(model._meta.pk, 'column', 'id')))}"
    # Through the driver's cursor, so errors are wrapped by hand: a unique violation is
    # django.db's IntegrityError, as with any other insert.
    with connection.cursor() as cursor, connection.wrap_database_errors:
        # One statement for the whole batch; PostgreSQL returns ids in VALUES order.
        result = execute_values(cursor.cursor, sql, rows, page_size=len(rows), fetch=returning_id)
    return [row[0] for row in result] if returning_id else []


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(text: str) -> str:
    """Text as a COPY text field: backslash, tab and line ends escaped."""
    # Most fields have none of them; four scans cost a twentieth of a translate.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


@functools.lru_cache(maxsize=4096)
def _datetime_text(value: datetime) -> str:
    # Cached: rows of one batch share their recorded time and often more.
    return value.isoformat()


def row_insert_under_parent(
    obj: models.Model,
    columns: Sequence[str],
    *,
    parent: type[models.Model],
    parent_id: int,
    parent_null: Sequence[str] = (),
    parent_true: Sequence[str] = (),
) -> int | None:
    """Insert ``obj``'s ``columns`` if the ``parent`` row ``parent_id`` exists with every
    field of ``parent_null`` NULL and of ``parent_true`` (booleans) true, and no unique
    constraint refuses the row; its id, or None.

    One statement where a lookup, a duplicate check and an insert were three: the
    single-touch path of ``POST touches/`` that bench/ingest.py sends. Both databases
    speak ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING``.
    """
    quote = connection.ops.quote_name
    meta = obj._meta
    fields = [meta.get_field(name) for name in columns]
    names = [
        quote(str(getattr(field, "column", name)))
        for field, name in zip(fields, columns, strict=True)
    ]
    pk = quote(str(getattr(meta.pk, "column", "id")))
    parent_table = quote(parent._meta.db_table)
    parent_pk = quote(str(getattr(parent._meta.pk, "column", "id")))
    living = "".join(
        f" AND {quote(str(getattr(parent._meta.get_field(name), 'column', name)))} IS NULL"
        for name in parent_null
    ) + "".join(
        f" AND {quote(str(getattr(parent._meta.get_field(name), 'column', name)))}"
        for name in parent_true
    )
    values = [
        field.get_db_prep_value(getattr(obj, name), connection)  # type: ignore[union-attr]
        for field, name in zip(fields, columns, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(names)}) "  # noqa: S608 -- model names
            f"SELECT {', '.join(['%s'] * len(names))} FROM {parent_table} "
            f"WHERE {parent_pk} = %s{living} ON CONFLICT DO NOTHING RETURNING {pk}",
            [*values, parent_id],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def rows_update(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Set ``columns`` of many rows by id: ``rows`` are ``(id, value, ...)``.

    One ``UPDATE ... FROM (VALUES ...)`` on PostgreSQL; Django's
    ``bulk_update`` builds a CASE expression per row and costs far more than
    the update itself. Elsewhere, one prepared UPDATE run for every row.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = quote(str(getattr(model._meta.pk, "column", "id")))
    names = [quote(str(getattr(model._meta.get_field(name), "column", name))) for name in columns]
    with connection.cursor() as cursor:
        # PostgreSQL: one UPDATE ... FROM (VALUES ...), which bench/ingest.py's bulk
        # events need (scores of many people at once); elsewhere one prepared UPDATE.
        if connection.vendor == "postgresql":
            # The VALUES row types come from the table's columns (first row cast).
            types = [model._meta.get_field(name).db_type(connection) or "text" for name in columns]
            assignments = ", ".join(f"{name} = v.{name}" for name in names)
            template = "(%s::bigint, " + ", ".join(f"%s::{kind}" for kind in types) + ")"
            sql = (
                f"UPDATE {table} SET {assignments} "  # noqa: S608 -- model names
                f"FROM (VALUES %s) AS v({pk}, {', '.join(names)}) WHERE {table}.{pk} = v.{pk}"
            )
            execute_values(cursor.cursor, sql, rows, template=template, page_size=len(rows))
        else:
            assignments = ", ".join(f"{name} = %s" for name in names)
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE {pk} = %s",  # noqa: S608
                [(*row[1:], row[0]) for row in rows],
            )


def copy_line(values: Sequence[Any], json_positions: Collection[int] = ()) -> str:
    """Values as one line of COPY text (without its newline).

    Written for speed (it runs for every row of every batch): one pass, the
    common types first.
    """
    out = []
    for index, value in enumerate(values):
        kind = type(value)
        if value is None:
            out.append("\\N")
        elif index in json_positions:
            out.append(copy_escape(json.dumps(value, ensure_ascii=False, separators=(",", ":"))))
        elif kind is str:
            out.append(copy_escape(value))
        elif kind is int:
            out.append(str(value))
        elif kind is bool:
            out.append("t" if value else "f")
        elif isinstance(value, datetime):
            out.append(_datetime_text(value))
        else:
            out.append(copy_escape(str(value)))
    return "\t".join(out)


def copy_lines(model: type[models.Model], columns: Sequence[str], lines: Sequence[str]) -> None:
    """COPY ready-made text lines (each ending in a newline) into ``model``'s table."""
    quote = connection.ops.quote_name
    column_names = ", ".join(
        quote(str(getattr(model._meta.get_field(name), "column", name))) for name in columns
    )
    # Through the driver's cursor, so errors are wrapped by hand: a unique
    # violation is django.db's IntegrityError, as with any other insert.
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.cursor.copy_expert(
            f"COPY {quote(model._meta.db_table)} ({column_names}) FROM STDIN",
            io.StringIO("".join(lines)),
        )


def rows_copy(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    json_columns: Collection[str] = (),
) -> None:
    """Insert ``rows`` with PostgreSQL's COPY (the fastest way in); no ids come back.

    Values may be str, int, Decimal, bool, aware datetimes, None, or JSON-ready
    data in ``json_columns``. Elsewhere than PostgreSQL this is ``rows_insert``.
    """
    if not rows:
        return
    # PostgreSQL: COPY, which bench/ingest.py and bench/attribution.py need for their
    # bulk rows; elsewhere (the embedded SQLite default) rows_insert.
    if connection.vendor != "postgresql":
        rows_insert(model, columns, rows, json_columns=json_columns)
        return
    positions = {index for index, name in enumerate(columns) if name in json_columns}
    copy_lines(model, columns, [copy_line(row, positions) + "\n" for row in rows])
