"""CSV imports of touches: read and check a file, keep it in an ``ImportJob``, import it.

Each CSV row becomes an event of type ``touch`` for ``events.ingest.events_ingest``,
the set-based path behind ``POST /api/v1/events/``, so the browser and the API
store, deduplicate and reject touches by the same rules, and every stored touch
is on the ledger. A row without an ``external_id`` gets one made of the file's
SHA-256 and the row number: uploading the same file again finds duplicates
instead of adding the touches twice.

The steps: ``touch_import_upload`` checks the file and keeps it as a job
waiting for the user's choice; ``touch_import_start`` records the choice (all
or nothing, or the valid rows) and queues ``events.touch_import.touch_import_run``, which the
Celery task calls and which is safe to run twice.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from leadrecord.api_fields import FUTURE_TOLERANCE, MAX_ID
from leadrecord.dates import MOMENT_OUT_OF_RANGE, moment_in_range
from leadrecord.dispatch import task_send_on_commit
from leadrecord.errors import Conflict, DomainError, Forbidden, InvalidInput
from leadrecord.ledger import Actor, ledger_append
from leadrecord.roles import Role, user_has_role

from . import rules
from .erasure import ERASED_DETAIL, ErasedPerson, erasures_of
from .models import (
    EMAIL_MAX_LENGTH,
    EXTERNAL_ID_MAX_LENGTH,
    IMPORT_FILE_NAME_MAX_LENGTH,
    SOURCE_SYSTEM_MAX_LENGTH,
    Campaign,
    Channel,
    Contact,
    ImportJob,
    ImportMode,
    ImportStatus,
    TouchKind,
)

logger = logging.getLogger(__name__)

# The Celery task that runs a queued import (``events.tasks``).
TOUCH_IMPORT_RUN_TASK = "contacts.touch_import_run"

# 10 MB holds about 100,000 rows of a typical export; the file is kept in the
# database until it has been imported, so larger ones are split by the user.
MAX_FILE_BYTES = 10 * 1024 * 1024
# A run of this many rows takes seconds on the ingest path; more would make a
# single all-or-nothing transaction hold the ledger lock for too long.
MAX_ROWS = 50_000
# Emails looked up per query when the preview looks for erased people.
EMAILS_PER_QUERY = 1000
PREVIEW_ROWS = 20
# Errors kept per job: enough to fix a file; the row report's ranges stay exact beyond it.
MAX_ERRORS_KEPT = 5_000
# A file uploaded but never imported holds people's emails: forgotten after a day.
ABANDONED_AFTER = timedelta(hours=24)
DEFAULT_SOURCE_SYSTEM = "csv-import"

REQUIRED_COLUMNS = ("email", "channel", "kind", "occurred_at")
OPTIONAL_COLUMNS = ("campaign", "external_id", "source_system")
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
DELIMITERS = (",", ";", "\t")
# What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list;
# tabs and carriage returns are stripped with the other surrounding blanks).
FORMULA_PREFIXES = ("=", "+", "-", "@")
OCCURRED_AT_MAX_LENGTH = 64
TOUCH_KINDS = tuple(str(value) for value in TouchKind.values)
# What erasure leaves in the email cell of an erased person's row in a file
# being imported (the row keeps its place, so a resumed run counts the same).
ERASED_ROW_MARK = "(erased)"
ERASED_ROW_MESSAGE = "This row was about a person who has since been erased; it is not imported."


def _refuse(code: str, detail: str) -> DomainError:
    return InvalidInput(code, detail, attr="file")


# --- reading a file --------------------------------------------------------------------


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


def _delimiter(header_line: str) -> str:
    """Comma, semicolon (spreadsheets in many locales) or tab: whichever names most columns."""
    best, best_count = ",", -1
    for delimiter in DELIMITERS:
        names = {name.strip().strip('"').lower() for name in header_line.split(delimiter)}
        count = len(names & set(KNOWN_COLUMNS))
        if count > best_count:
            best, best_count = delimiter, count
    return best


def csv_read(text: str, *, limit: int | None = None) -> CsvFile:
    """Parse the header and the rows (the first ``limit`` of them when given).

    Raises a domain error (attr ``file``) for a file that cannot be imported as a
    whole: not CSV, columns missing or repeated, no rows, too many rows.
    """
    delimiter = _delimiter(text.lstrip().split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    number = 0  # records read, blank ones included, as a spreadsheet numbers its rows
    try:
        header: list[str] = []
        for record in reader:
            number += 1
            if any(cell.strip() for cell in record):
                header = record
                break
        names = [cell.strip().lower() for cell in header]
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
        raise _refuse("missing_columns", f"Missing columns: {', '.join(missing)}. {expected}")


# --- checking the rows -------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class CheckedRow:
    number: int
    event: dict[str, Any] | None  # the event for events_ingest; None when the row has errors
    errors: list[RowError] = field(default_factory=list)


@dataclass
class _Lookups:
    channels: dict[str, Channel]
    campaigns_by_id: dict[int, Campaign]
    campaigns_by_name: dict[str, Campaign]


def _lookups(rows: Sequence[CsvRow]) -> _Lookups:
    references = {row.cells.get("campaign", "") for row in rows} - {""}
    ids = {int(text) for text in references if text.isdigit() and 0 < int(text) <= MAX_ID}
    names = {text.lower() for text in references if not text.isdigit()}
    campaigns = Campaign.objects.select_related("channel").annotate(lower_name=Lower("name"))
    return _Lookups(
        channels={channel.key: channel for channel in Channel.objects.filter(active=True)},
        campaigns_by_id={c.pk: c for c in campaigns.filter(pk__in=ids)} if ids else {},
        campaigns_by_name=(
            {c.lower_name: c for c in campaigns.filter(lower_name__in=names)} if names else {}
        ),
    )


class _CellRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _cell(row: CsvRow, name: str, *, max_length: int, required: bool) -> str:
    value = row.cells.get(name, "")
    if not value:
        if required:
            raise _CellRefused("This field is required.")
        return ""
    if value.startswith(FORMULA_PREFIXES):
        raise _CellRefused(
            f"Starts with {value[0]!r}, which a spreadsheet runs as a formula: "
            "such cells are not accepted."
        )
    if len(value) > max_length:
        raise _CellRefused(f"Give at most {max_length} characters (this cell has {len(value)}).")
    return value


def _email(row: CsvRow) -> str:
    email = _cell(row, "email", max_length=EMAIL_MAX_LENGTH, required=True)
    if not rules.email_valid(email):
        raise _CellRefused(rules.EMAIL_INVALID)
    return email


def _channel(row: CsvRow, lookups: _Lookups) -> Channel:
    key = _cell(row, "channel", max_length=100, required=True)
    channel = lookups.channels.get(key)
    if channel is None:
        known = ", ".join(sorted(lookups.channels))
        raise _CellRefused(f"No active channel has this key; the channels are {known}.")
    return channel


def _kind(row: CsvRow) -> str:
    kind = _cell(row, "kind", max_length=40, required=True)
    if kind not in TOUCH_KINDS:
        raise _CellRefused(f"Choose one of {', '.join(TOUCH_KINDS)}.")
    return kind


def _campaign(row: CsvRow, lookups: _Lookups, channel: Channel | None) -> Campaign | None:
    text = _cell(row, "campaign", max_length=200, required=False)
    if not text:
        return None
    if text.isdigit():
        campaign = lookups.campaigns_by_id.get(int(text)) if int(text) <= MAX_ID else None
    else:
        campaign = lookups.campaigns_by_name.get(text.lower())
    if campaign is None:
        raise _CellRefused("No campaign has this id or name.")
    if channel is not None:
        try:
            rules.campaign_on_channel_check(campaign=campaign, channel=channel)
        except DomainError as refusal:
            raise _CellRefused(refusal.detail) from refusal
    return campaign


def _occurred_at(row: CsvRow, now: datetime) -> datetime:
    text = _cell(row, "occurred_at", max_length=OCCURRED_AT_MAX_LENGTH, required=True)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise _CellRefused(
            "Give an ISO 8601 time with a UTC offset, e.g. 2026-05-01T09:30:00+02:00."
        ) from error
    if moment.tzinfo is None:
        raise _CellRefused("Give the time with a UTC offset, e.g. 2026-05-01T09:30:00+02:00.")
    if not moment_in_range(moment):
        raise _CellRefused(MOMENT_OUT_OF_RANGE)
    if moment > now + FUTURE_TOLERANCE:
        raise _CellRefused("This time is in the future.")
    return moment


def generated_external_id(sha256: str, row_number: int) -> str:
    """Stable for a file and a row: the same file uploaded again names the same touches."""
    return f"sha256:{sha256}:row:{row_number}"


def rows_check(
    rows: Sequence[CsvRow], *, sha256: str, now: datetime | None = None
) -> list[CheckedRow]:
    """Each row's event for ``events_ingest``, or its errors (row, field, message)."""
    now = now or timezone.now()
    lookups = _lookups(rows)
    return [_row_check(row, lookups, sha256, now) for row in rows]


def _take(errors: list[RowError], row: CsvRow, name: str, read: Callable[[], Any]) -> Any:
    """The cell's value as ``read`` makes it, or None with the refusal noted in ``errors``."""
    try:
        return read()
    except _CellRefused as refusal:
        errors.append(RowError(row.number, name, refusal.message))
        return None


def _row_check(row: CsvRow, lookups: _Lookups, sha256: str, now: datetime) -> CheckedRow:
    if row.cells.get("email") == ERASED_ROW_MARK:
        return CheckedRow(row.number, None, [RowError(row.number, "email", ERASED_ROW_MESSAGE)])
    errors: list[RowError] = []
    email = _take(errors, row, "email", lambda: _email(row))
    channel = _take(errors, row, "channel", lambda: _channel(row, lookups))
    campaign = _take(errors, row, "campaign", lambda: _campaign(row, lookups, channel))
    kind = _take(errors, row, "kind", lambda: _kind(row))
    occurred_at = _take(errors, row, "occurred_at", lambda: _occurred_at(row, now))
    external_id = _take(
        errors,
        row,
        "external_id",
        lambda: _cell(row, "external_id", max_length=EXTERNAL_ID_MAX_LENGTH, required=False),
    )
    source_system = _take(
        errors,
        row,
        "source_system",
        lambda: _cell(row, "source_system", max_length=SOURCE_SYSTEM_MAX_LENGTH, required=False),
    )
    if row.extra_cells:
        errors.append(
            RowError(row.number, "row", "This row has more cells than the header has columns.")
        )
    if errors:
        return CheckedRow(row.number, None, errors)
    event: dict[str, Any] = {
        "type": "touch",
        "source_system": source_system or DEFAULT_SOURCE_SYSTEM,
        "external_id": external_id or generated_external_id(sha256, row.number),
        "occurred_at": occurred_at.isoformat(),
        "contact": {"email": email},
        "channel": channel.key,
        "kind": kind,
    }
    if campaign is not None:
        event["campaign"] = campaign.pk
    return CheckedRow(row.number, event)


def _errors_of(checked: Iterable[CheckedRow]) -> list[RowError]:
    return [error for row in checked for error in row.errors]


# --- reads ------------------------------------------------------------------------------


UserLike = AbstractBaseUser | AnonymousUser


def import_jobs_for(user: UserLike) -> QuerySet[ImportJob]:
    """Imports a user may see: their own; a manager sees everyone's."""
    jobs = ImportJob.objects.select_related("created_by").defer("content")
    if user_has_role(user, Role.MANAGER):
        return jobs
    return jobs.filter(created_by_id=user.pk)


@dataclass
class ImportPreview:
    columns: list[str]
    ignored_columns: list[str]
    rows: list[tuple[CsvRow, list[RowError]]]  # the first rows, each with its errors


def import_preview(job: ImportJob) -> ImportPreview | None:
    """The first rows of an uploaded file with the errors the check found in them."""
    if not job.content:
        return None
    parsed = csv_read(job.content, limit=PREVIEW_ROWS)
    by_row: dict[int, list[RowError]] = {}
    for error in job.errors:
        by_row.setdefault(error["row"], []).append(RowError(**error))
    return ImportPreview(
        columns=parsed.columns,
        ignored_columns=parsed.ignored_columns,
        rows=[(row, by_row.get(row.number, [])) for row in parsed.rows],
    )


def row_ranges_text(ranges: Iterable[Sequence[int]]) -> str:
    """Row ranges as people write them, with en dashes: ``2-5, 7, 9-12``."""
    return ", ".join(
        str(first) if first == last else f"{first}\u2013{last}" for first, last in ranges
    )


def import_same_file_before(job: ImportJob) -> ImportJob | None:
    """An earlier import of a file with the same content, if any."""
    return (
        ImportJob.objects.filter(sha256=job.sha256, created_at__lt=job.created_at)
        .exclude(status=ImportStatus.UPLOADED)
        .defer("content")
        .order_by("-created_at")
        .first()
    )


# --- writes -----------------------------------------------------------------------------


def touch_import_upload(*, file_name: str, raw: bytes, user: UserLike) -> ImportJob:
    """Check an uploaded CSV file and keep it as a job waiting for the user's choice of mode.

    Raises a domain error (attr ``file``, 400) when the file as a whole cannot be
    imported. Rows with errors are kept with their errors for the preview.
    Effects: one ImportJob (status ``uploaded``); nothing on the ledger yet, as
    nothing about a person has been recorded.
    """
    if user.pk is None:
        raise Forbidden("not_authenticated", "Log in to import.")
    text = csv_text(raw)
    rows = csv_read(text).rows
    sha256 = hashlib.sha256(raw).hexdigest()
    checked = rows_check(rows, sha256=sha256)
    _erased_rows_mark(checked)
    errors = _errors_of(checked)
    now = timezone.now()
    touch_imports_forget_abandoned(now=now)
    return ImportJob.objects.create(
        created_by_id=user.pk,
        created_at=now,
        file_name=(file_name.strip() or "upload.csv")[:IMPORT_FILE_NAME_MAX_LENGTH],
        sha256=sha256,
        content=text,
        total=len(rows),
        # Before the run, ``rejected`` counts the rows the check found faulty.
        rejected=sum(1 for row in checked if row.errors),
        errors=[error.as_dict() for error in errors[:MAX_ERRORS_KEPT]],
    )


def _erased_rows_mark(checked: list[CheckedRow]) -> None:
    """Give the preview a finding for each row about a person not on record who was erased
    after the row's time: the import will refuse it (``events.ingest``), so the
    uploader learns it before choosing a mode. A chunk's worth of emails per query."""
    rows = [(row, row.event) for row in checked if row.event is not None]
    emails = sorted({event["contact"]["email"].lower() for _, event in rows})
    erased: dict[str, datetime] = {}
    for start in range(0, len(emails), EMAILS_PER_QUERY):
        chunk = emails[start : start + EMAILS_PER_QUERY]
        on_record = set(
            Contact.objects.filter(email_key__in=chunk).values_list("email_key", flat=True)
        )
        erased.update(erasures_of(set(chunk) - on_record))
    if not erased:
        return
    for row, event in rows:
        erased_at = erased.get(event["contact"]["email"].lower())
        if erased_at is not None and datetime.fromisoformat(event["occurred_at"]) < erased_at:
            row.event = None
            row.errors.append(RowError(row.number, "email", ERASED_DETAIL))


def touch_import_start(*, job: ImportJob, mode: str, actor: Actor) -> ImportJob:
    """Record the user's choice and queue the import (after commit).

    Raises a domain error: 400 for an unknown mode, 409 when the job has already
    started. Effects: the job becomes ``queued``; a ledger entry.
    """
    if mode not in ImportMode.values:
        raise InvalidInput("invalid_choice", "Choose how to import the file.", attr="mode")
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().defer("content").get(pk=job.pk)
        if job.status != ImportStatus.UPLOADED:
            raise Conflict("already_started", "This import has already been started.", attr="mode")
        job.mode, job.status = mode, ImportStatus.QUEUED
        job.save(update_fields=["mode", "status"])
        ledger_append(
            actor=actor,
            action="touch_import.start",
            subject_type="import_job",
            subject_id=job.pk,
            after={"mode": mode, "rows": job.total, "sha256": job.sha256},
        )
        job_id = job.pk

        # The run is the events app's (``events.touch_import``), a layer above this one:
        # queued by the task's name, the way Celery decouples a sender from its worker.
        # An import the marketer is watching should not wait for a broker that is down.
        task_send_on_commit(
            current_app.tasks[TOUCH_IMPORT_RUN_TASK], job_id, inline_if_unreachable=True
        )
    return job


def touch_imports_forget_abandoned(*, now: datetime | None = None) -> int:
    """Delete files uploaded but never imported within a day: they hold people's emails."""
    cutoff = (now or timezone.now()) - ABANDONED_AFTER
    deleted, _ = ImportJob.objects.filter(
        status=ImportStatus.UPLOADED, created_at__lt=cutoff
    ).delete()
    return deleted


# --- erasure -----------------------------------------------------------------------------

_UNFINISHED = (ImportStatus.UPLOADED, ImportStatus.QUEUED, ImportStatus.RUNNING)


def touch_imports_lock_pending() -> list[int]:
    """Lock the jobs whose file is still kept (not yet imported) and return their ids.

    For erasure, before it takes the ledger lock: an import's chunk locks its
    job, then the ledger, so taking them in the other order could deadlock.
    """
    return list(
        ImportJob.objects.select_for_update()
        .filter(status__in=_UNFINISHED)
        .exclude(content="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@dataclass
class _Scrubbed:
    text: str
    removed_rows: list[int]  # row numbers, as the preview and the report number them
    emptied_cells: int


def _content_without(text: str, person: ErasedPerson, *, keep_places: bool) -> _Scrubbed:
    """The file's text without the person: their rows (their email in the email column or
    in any cell) removed, and cells of ignored columns naming them emptied.

    A removed row becomes a blank line, so every other row keeps its number (and
    the external id made from it). With ``keep_places`` (a run under way, which
    numbers its chunks by position) it becomes a row marked ``ERASED_ROW_MARK``
    instead, which the check refuses. Raises csv.Error for text that is not CSV.
    """
    delimiter = _delimiter(text.lstrip().split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    names: list[str] | None = None
    removed: list[int] = []
    emptied = 0
    for number, record in enumerate(reader, start=1):
        if names is None or not any(cell.strip() for cell in record):
            if any(cell.strip() for cell in record):
                names = [cell.strip().lower() for cell in record]
            writer.writerow(record)
            continue
        email_at = names.index("email") if "email" in names else None
        email = record[email_at] if email_at is not None and email_at < len(record) else ""
        if email.strip().lower() in person.emails or any(
            email_part in cell.lower() for cell in record for email_part in person.emails
        ):
            removed.append(number)
            if keep_places and email_at is not None:
                marked = [""] * len(names)
                marked[email_at] = ERASED_ROW_MARK
                writer.writerow(marked)
            else:
                writer.writerow([])
            continue
        cleaned = list(record)
        for position, cell in enumerate(record):
            ignored = position >= len(names) or names[position] not in KNOWN_COLUMNS
            if ignored and cell and person.named_in(cell):
                cleaned[position] = ""
                emptied += 1
        writer.writerow(cleaned)
    return _Scrubbed(out.getvalue(), removed, emptied)


def _job_erase(job: ImportJob, person: ErasedPerson) -> tuple[int, int] | None:
    """Take the person out of one kept file; (rows removed, cells emptied), or None when
    the file does not name them. The job's counts and findings follow the file."""
    running = job.status == ImportStatus.RUNNING
    try:
        scrubbed = _content_without(job.content, person, keep_places=running)
    except csv.Error:
        # Cannot happen for a file the upload read, but if it does, a file that
        # names the person cannot be kept.
        if not person.named_in(job.content):
            return None
        scrubbed = _Scrubbed("", [], 0)
    if not scrubbed.removed_rows and not scrubbed.emptied_cells and scrubbed.text:
        return None
    job.content = scrubbed.text
    fields = ["content"]
    if not running:
        removed = set(scrubbed.removed_rows)
        try:
            left = len(csv_read(job.content).rows) if job.content else 0
        except DomainError:
            left = 0
        faulty_removed = {error["row"] for error in job.errors if error["row"] in removed}
        job.errors = [error for error in job.errors if error["row"] not in removed]
        job.rejected = max(job.rejected - len(faulty_removed), 0)
        job.total = left
        fields += ["errors", "rejected", "total"]
        if left == 0:
            job.content = ""
            job.status = ImportStatus.FAILED
            job.rejected = 0
            job.finished_at = timezone.now()
            job.message = "Nothing is left to import: every row was about a person since erased."
            fields += ["status", "message", "finished_at"]
    job.save(update_fields=fields)
    return len(scrubbed.removed_rows), scrubbed.emptied_cells


def _file_name_without(job_id: int) -> str:
    return f"import-{job_id}.csv"


def touch_imports_erase(*, person: ErasedPerson, job_ids: Sequence[int]) -> dict[str, Any]:
    """Erasure's part in the imports: the person's rows leave the files still kept (the
    ``job_ids`` that ``touch_imports_lock_pending`` locked), and any import's file name
    that names them is replaced. Runs in the erasure's transaction.

    Returns what was scrubbed, for the erasure's ledger entry: job ids and counts,
    no personal value.
    """
    jobs_changed: list[int] = []
    rows_removed = cells_emptied = 0
    for job in ImportJob.objects.filter(pk__in=list(job_ids)).order_by("pk"):
        outcome = _job_erase(job, person)
        if outcome is not None:
            jobs_changed.append(job.pk)
            rows_removed += outcome[0]
            cells_emptied += outcome[1]
    renamed = [
        job_id
        for job_id, file_name in ImportJob.objects.values_list("pk", "file_name").order_by("pk")
        if person.named_in_label(file_name)
    ]
    for job_id in renamed:
        ImportJob.objects.filter(pk=job_id).update(file_name=_file_name_without(job_id))
    return {
        "import_jobs": jobs_changed,
        "import_rows_removed": rows_removed,
        "import_cells_emptied": cells_emptied,
        "import_file_names_replaced": renamed,
    }
