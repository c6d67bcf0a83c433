"""Reading back dates and times that Python cannot hold.

Every input path refuses times outside ``leadrecord.dates``' range, but a row
may already hold one: written before the range existed (PostgreSQL keeps
``9999-12-31T23:59:59-14:00`` as year 10000, and BC dates), or by hand. The
database drivers fail on such a value (psycopg2: "year 10000 is out of
range"; Django's SQLite reader makes it None, which a required field cannot
be), so one bad expiry would make the person unreadable everywhere, their
subject-access export and the withdrawal that would remove it included.

Registered once at start-up, these readers turn a stored value that Python
cannot represent into the nearest end of the accepted range: a year after 9999
reads as 2200-12-31T23:59:59.999999Z, a BC (or unreadable) one as
1900-01-01T00:00:00Z. Values Python can hold are read exactly as stored, so
what the ledger hashed reads back unchanged.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime

from .dates import EARLIEST_DAY, EARLIEST_MOMENT, LATEST_DAY, LATEST_MOMENT

# PostgreSQL's type oids (pg_type): timestamptz, date and their arrays.
_TIMESTAMPTZ_OIDS = (1184,)
_TIMESTAMPTZ_ARRAY_OIDS = (1185,)
_DATE_OIDS = (1082,)
_DATE_ARRAY_OIDS = (1182,)

# A year with five digits or more: past Python's 9999.
_BEYOND_9999 = re.compile(r"\s*\+?\d{5,}-")


def _after_9999(text: str) -> bool:
    """PostgreSQL writes BC dates with a `` BC`` suffix; anything else Python cannot hold
    is a year after 9999 (SQLite may also hold text that is no date at all: the earliest)."""
    return not text.endswith("BC") and bool(_BEYOND_9999.match(text))


def _tolerant_pg(base: Any, earliest: object, latest: object) -> Callable[[str | None, Any], Any]:
    def cast(value: str | None, cursor: Any) -> Any:
        if value is None:
            return None
        try:
            return base(value, cursor)
        except ValueError:
            return latest if _after_9999(value) else earliest

    return cast


def _register_psycopg2() -> None:
    try:
        import psycopg2.extensions as pg
    except ImportError:  # pragma: no cover - psycopg2 is a dependency
        return
    moment = pg.new_type(
        _TIMESTAMPTZ_OIDS,
        "LEADRECORD_TIMESTAMPTZ",
        _tolerant_pg(pg.PYDATETIMETZ, EARLIEST_MOMENT, LATEST_MOMENT),
    )
    day = pg.new_type(
        _DATE_OIDS, "LEADRECORD_DATE", _tolerant_pg(pg.PYDATE, EARLIEST_DAY, LATEST_DAY)
    )
    for caster in (
        moment,
        day,
        pg.new_array_type(_TIMESTAMPTZ_ARRAY_OIDS, "LEADRECORD_TIMESTAMPTZ[]", moment),
        pg.new_array_type(_DATE_ARRAY_OIDS, "LEADRECORD_DATE[]", day),
    ):
        pg.register_type(caster)


def _sqlite_moment(raw: bytes) -> datetime:
    # Django's SQLite backend stores naive UTC text; it makes the value aware itself.
    text = raw.decode()
    try:
        parsed = parse_datetime(text)
    except ValueError:  # well formed, but no such day or hour
        parsed = None
    if parsed is not None:
        return parsed
    return (LATEST_MOMENT if _after_9999(text) else EARLIEST_MOMENT).replace(tzinfo=None)


def _sqlite_day(raw: bytes) -> date:
    text = raw.decode()
    try:
        parsed = parse_date(text)
    except ValueError:
        parsed = None
    if parsed is not None:
        return parsed
    return LATEST_DAY if _after_9999(text) else EARLIEST_DAY


def _register_sqlite() -> None:
    # Django's backend registers its own readers for these declared types when
    # it is imported; import it first so that these replace them.
    import django.db.backends.sqlite3.base  # noqa: F401

    sqlite3.register_converter("datetime", _sqlite_moment)
    sqlite3.register_converter("timestamp", _sqlite_moment)
    sqlite3.register_converter("date", _sqlite_day)


def stored_dates_tolerate() -> None:
    """Install the readers (``LeadRecordConfig.ready``); safe to call more than once."""
    _register_psycopg2()
    _register_sqlite()
