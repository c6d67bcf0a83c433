"""Reading an uploaded CSV file of touches: its text (UTF-8, within the size limit), its
delimiter and header, and its rows (within the row limit). A file that cannot be imported
as a whole is refused with a domain error on the field ``file``."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

from leadrecord.errors import DomainError, InvalidInput

# 10 MB holds about 100,000 rows of a typical export; the file is kept in the
# database until it has been imported, so larger ones are split by the user.
MAX_FILE_BYTES = 10 * 1024 * 1024
# A run of this many rows takes seconds on the ingest path; more would make a
# single all-or-nothing transaction hold the ledger lock for too long.
MAX_ROWS = 50_000

REQUIRED_COLUMNS = ("email", "channel", "kind", "occurred_at")
OPTIONAL_COLUMNS = ("campaign", "external_id", "source_system")
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
DELIMITERS = (",", ";", "\t")
COLUMN_NAME_MAX_LENGTH = 200

# Column names of HubSpot's and Salesforce's contact and activity exports (and common
# spellings), lower-cased, read as our columns when the file has no column of that name.
HEADER_ALIASES: dict[str, str] = {
    # email
    "email address": "email",
    "e-mail": "email",
    "e-mail address": "email",
    "contact email": "email",
    "lead email": "email",
    # when it happened
    "activity date": "occurred_at",
    "activity date/time": "occurred_at",
    "date": "occurred_at",
    "timestamp": "occurred_at",
    "event date": "occurred_at",
    "create date": "occurred_at",  # HubSpot contacts: when the contact was created
    "created date": "occurred_at",  # Salesforce
    "last activity date": "occurred_at",
    # what kind of touch
    "activity type": "kind",
    "type": "kind",
    "task subtype": "kind",  # Salesforce tasks
    "event type": "kind",
    # where
    "original source": "channel",  # HubSpot
    "lead source": "channel",  # Salesforce
    "source": "channel",
    # which campaign
    "campaign name": "campaign",
    "associated campaign": "campaign",
    # the row's id in the system it came from
    "activity id": "external_id",
    "task id": "external_id",
    "record id": "external_id",  # HubSpot
    "id": "external_id",  # Salesforce
    "source system": "source_system",
}


def _refuse(code: str, detail: str) -> DomainError:
    return InvalidInput(code, detail, attr="file")


@dataclass(frozen=True)
class CsvRow:
    number: int  # as a spreadsheet numbers it (the header is row 1, blank lines count)
    cells: dict[str, str]
    extra_cells: bool = False  # more non-empty cells than the header has columns


@dataclass
class CsvFile:
    columns: list[str]
    ignored_columns: list[str]
    rows: list[CsvRow]


def csv_text(raw: bytes) -> str:
    """The file's text, or InvalidInput (attr ``file``) when it is not a small UTF-8 text."""
    if len(raw) > MAX_FILE_BYTES:
        raise _refuse(
            "too_large",
            f"The file is {len(raw) / 1024 / 1024:.1f} MB; the limit is "
            f"{MAX_FILE_BYTES // 1024 // 1024} MB. Split it into smaller files.",
        )
    if not raw.strip():
        raise _refuse("empty", "The file is empty.")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _refuse("encoding", "The file is UTF-16 text: save it as CSV in UTF-8.")
    if b"\x00" in raw:
        raise _refuse("binary", "This is not a CSV text file: it holds binary data.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _refuse(
            "encoding",
            f"The file is not UTF-8 text (byte {error.start + 1} is not): save it as CSV in UTF-8.",
        ) from error
    return text


def delimiter_of(header_line: str, column_map: dict[str, str] | None = None) -> str:
    """Comma, semicolon (spreadsheets in many locales) or tab: whichever names most columns."""
    known = set(KNOWN_COLUMNS) | set(HEADER_ALIASES) | set((column_map or {}).values())
    best, best_count = ",", -1
    for delimiter in DELIMITERS:
        names = {name.strip().strip('"').lower() for name in header_line.split(delimiter)}
        count = len(names & known)
        if count > best_count:
            best, best_count = delimiter, count
    return best


def csv_read(
    text: str, *, limit: int | None = None, column_map: dict[str, str] | None = None
) -> CsvFile:
    """Parse the header and the rows (the first ``limit`` of them when given).

    ``column_map`` names the file's column (a header, any case) for any of our columns;
    columns it does not name are found by their own name, then by ``HEADER_ALIASES``.

    Raises a domain error (attr ``file``) for a file that cannot be imported as a
    whole: not CSV, columns missing or repeated, no rows, too many rows.
    """
    delimiter = delimiter_of(text.lstrip().split("\n", 1)[0], column_map)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    number = 0  # records read, blank ones included, as a spreadsheet numbers its rows
    try:
        header: list[str] = []
        for record in reader:
            number += 1
            if any(cell.strip() for cell in record):
                header = record
                break
        names = columns_named([cell.strip().lower() for cell in header], column_map or {})
        _header_check(names)
        rows: list[CsvRow] = []
        for record in reader:
            number += 1
            if not any(cell.strip() for cell in record):
                continue  # blank lines are not rows
            if limit is not None and len(rows) >= limit:
                break
            if len(rows) >= MAX_ROWS:
                raise _refuse(
                    "too_many_rows",
                    f"The file has more than {MAX_ROWS:,} rows. Split it into smaller files.",
                )
            cells = {
                name: record[position].strip()
                for position, name in enumerate(names)
                if name in KNOWN_COLUMNS and position < len(record)
            }
            extra = any(cell.strip() for cell in record[len(names) :])
            rows.append(CsvRow(number, cells, extra))
    except csv.Error as error:
        raise _refuse(
            "not_csv", f"The file is not valid CSV near line {reader.line_num}: {error}."
        ) from error
    if not rows:
        raise _refuse("no_rows", "The file has a header but no rows.")
    return CsvFile(
        columns=[name for name in names if name in KNOWN_COLUMNS],
        ignored_columns=[name for name in names if name and name not in KNOWN_COLUMNS],
        rows=rows,
    )


def _header_check(names: list[str]) -> None:
    expected = (
        f"The first row must name the columns {', '.join(REQUIRED_COLUMNS)} "
        f"(and may name {', '.join(OPTIONAL_COLUMNS)})."
    )
    if not names:
        raise _refuse("empty", "The file is empty.")
    repeated = sorted({name for name in names if name in KNOWN_COLUMNS and names.count(name) > 1})
    if repeated:
        raise _refuse("repeated_columns", f"Columns named twice: {', '.join(repeated)}.")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise _refuse(
            "missing_columns",
            f"Missing columns: {', '.join(missing)}. {expected} Or say below which of the "
            f"file's columns holds each; its columns are "
            f"{', '.join(repr(name) for name in names if name)}.",
        )


def columns_named(headers: list[str], column_map: dict[str, str]) -> list[str]:
    """Our column for each of the file's (lower-cased) headers, or the header itself.

    The user's ``column_map`` (our column -> their header) comes first, then a header
    that is our column's own name, then ``HEADER_ALIASES`` for a column still free (the
    first such header), so an export with both "Email" and "Email Address" reads "Email"
    as the email. A mapped header the file lacks is refused.
    """
    wanted = {header.strip().lower(): column for column, header in column_map.items() if header}
    absent = sorted(
        f"{header!r} (for {column})" for header, column in wanted.items() if header not in headers
    )
    if absent:
        raise _refuse(
            "column_not_found",
            f"The file has no column {', '.join(absent)}; its columns are "
            f"{', '.join(repr(name) for name in headers if name)}.",
        )
    mapped = set(wanted.values())
    # Our columns' own names come before aliases; a name given twice stays twice, and
    # the header check refuses it.
    taken = mapped | {header for header in headers if header in KNOWN_COLUMNS}
    names: list[str] = []
    for header in headers:
        if header in wanted:
            names.append(wanted[header])
        elif header in KNOWN_COLUMNS:
            names.append(f"{header} (unused)" if header in mapped else header)
        elif HEADER_ALIASES.get(header) not in taken | {None}:
            taken.add(HEADER_ALIASES[header])
            names.append(HEADER_ALIASES[header])
        else:
            names.append(header)
    return names
