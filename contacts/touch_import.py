"""CSV imports of touches: read and check a file, keep it in an ``ImportJob``, import it.

Each CSV row becomes an event of type ``touch`` for ``events.ingest.events_ingest``,
the set-based path behind ``POST /api/v1/events/``, so the browser and the API
store, deduplicate and reject touches by the same rules, and every stored touch
is on the ledger. A row without an ``external_id`` gets one made of the file's
SHA-256 and the row number: uploading the same file again finds duplicates
instead of adding the touches twice.

Reading a file is ``touch_import_csv``'s, checking its rows ``touch_import_check``'s and
scrubbing an erased person from kept files ``touch_import_erasure``'s; this module names
them all, keeps the jobs and records the user's choice.

The steps: ``touch_import_upload`` checks the file and keeps it as a job
waiting for the user's choice; ``touch_import_start`` records the choice (all
or nothing, or the valid rows) and queues ``events.touch_import.touch_import_run``, which the
Celery task calls and which is safe to run twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import available_timezones

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from leadrecord.dispatch import task_send_on_commit
from leadrecord.errors import Conflict, Forbidden, InvalidInput
from leadrecord.ledger import Actor, ledger_append
from leadrecord.roles import Role, user_has_role

from .erasure import ERASED_DETAIL, erasures_of
from .models import (
    IMPORT_FILE_NAME_MAX_LENGTH,
    Contact,
    ImportJob,
    ImportMode,
    ImportStatus,
)
from .touch_import_check import (
    DEFAULT_SOURCE_SYSTEM,
    ERASED_ROW_MARK,
    ERASED_ROW_MESSAGE,
    FORMULA_PREFIXES,
    OCCURRED_AT_MAX_LENGTH,
    TOUCH_KINDS,
    CheckedRow,
    RowError,
    errors_of,
    generated_external_id,
    rows_check,
)
from .touch_import_csv import (
    COLUMN_NAME_MAX_LENGTH,
    DELIMITERS,
    HEADER_ALIASES,
    KNOWN_COLUMNS,
    MAX_FILE_BYTES,
    MAX_ROWS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    CsvFile,
    CsvRow,
    csv_read,
    csv_text,
)
from .touch_import_erasure import touch_imports_erase, touch_imports_lock_pending

logger = logging.getLogger(__name__)

# The Celery task that runs a queued import (``events.tasks``).
TOUCH_IMPORT_RUN_TASK = "contacts.touch_import_run"

# Emails looked up per query when the preview looks for erased people.
EMAILS_PER_QUERY = 1000
PREVIEW_ROWS = 20
# Errors kept per job: enough to fix a file; the row report's ranges stay exact beyond it.
MAX_ERRORS_KEPT = 5_000
# A file uploaded but never imported holds people's emails: forgotten after a day.
ABANDONED_AFTER = timedelta(hours=24)


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
    parsed = csv_read(job.content, limit=PREVIEW_ROWS, column_map=job.column_map)
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


def touch_import_upload(
    *,
    file_name: str,
    raw: bytes,
    user: UserLike,
    column_map: dict[str, str] | None = None,
    time_zone: str = "",
) -> ImportJob:
    """Check an uploaded CSV file and keep it as a job waiting for the user's choice of mode.

    ``column_map`` names the file's column for any of ours (``csv_read``); ``time_zone``
    is the zone of times without an offset. Both are kept on the job, so the run reads
    the file as the preview did, and the user's next upload starts from them.

    Raises a domain error (attr ``file``, 400) when the file as a whole cannot be
    imported. Rows with errors are kept with their errors for the preview.
    Effects: one ImportJob (status ``uploaded``); nothing on the ledger yet, as
    nothing about a person has been recorded.
    """
    if user.pk is None:
        raise Forbidden("not_authenticated", "Log in to import.")
    column_map = column_map_clean(column_map or {})
    time_zone = time_zone_clean(time_zone)
    text = csv_text(raw)
    rows = csv_read(text, column_map=column_map).rows
    sha256 = hashlib.sha256(raw).hexdigest()
    checked = rows_check(rows, sha256=sha256, time_zone=time_zone)
    _erased_rows_mark(checked)
    errors = errors_of(checked)
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
        column_map=column_map,
        time_zone=time_zone,
    )


def column_map_clean(column_map: dict[str, str]) -> dict[str, str]:
    """Our columns to the file's headers (lower-cased, blanks left out); InvalidInput for an
    unknown column or an oversized header."""
    cleaned: dict[str, str] = {}
    for column, header in column_map.items():
        if column not in KNOWN_COLUMNS:
            raise InvalidInput("invalid", f"There is no column {column!r} to map.", attr=column)
        header = (header or "").strip().lower()
        if len(header) > COLUMN_NAME_MAX_LENGTH:
            raise InvalidInput(
                "max_length",
                f"A column name has at most {COLUMN_NAME_MAX_LENGTH} characters.",
                attr=f"column_{column}",
            )
        if header:
            cleaned[column] = header
    return cleaned


def time_zone_clean(time_zone: str) -> str:
    """An IANA time-zone name, or '' for none; InvalidInput for an unknown one."""
    time_zone = time_zone.strip()
    if time_zone and time_zone not in available_timezones():
        raise InvalidInput("invalid", "Choose a time zone from the list.", attr="time_zone")
    return time_zone


def import_choices_last(user: UserLike) -> ImportJob | None:
    """The user's latest import: its column mapping and time zone start their next one."""
    return (
        ImportJob.objects.filter(created_by_id=user.pk)
        .only("column_map", "time_zone")
        .order_by("-created_at", "-id")
        .first()
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


__all__ = [
    "ABANDONED_AFTER",
    "COLUMN_NAME_MAX_LENGTH",
    "DEFAULT_SOURCE_SYSTEM",
    "DELIMITERS",
    "EMAILS_PER_QUERY",
    "ERASED_ROW_MARK",
    "ERASED_ROW_MESSAGE",
    "FORMULA_PREFIXES",
    "HEADER_ALIASES",
    "KNOWN_COLUMNS",
    "MAX_ERRORS_KEPT",
    "MAX_FILE_BYTES",
    "MAX_ROWS",
    "OCCURRED_AT_MAX_LENGTH",
    "OPTIONAL_COLUMNS",
    "PREVIEW_ROWS",
    "REQUIRED_COLUMNS",
    "TOUCH_IMPORT_RUN_TASK",
    "TOUCH_KINDS",
    "CheckedRow",
    "CsvFile",
    "CsvRow",
    "ImportPreview",
    "RowError",
    "UserLike",
    "column_map_clean",
    "csv_read",
    "csv_text",
    "errors_of",
    "generated_external_id",
    "import_choices_last",
    "import_jobs_for",
    "import_preview",
    "import_same_file_before",
    "row_ranges_text",
    "rows_check",
    "time_zone_clean",
    "touch_import_start",
    "touch_import_upload",
    "touch_imports_erase",
    "touch_imports_forget_abandoned",
    "touch_imports_lock_pending",
]
