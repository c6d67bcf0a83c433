"""Erasure in kept CSV files: the rows about an erased person leave the files of imports
not yet run (marked, so a resumed run counts the same), and their names leave every
import's file name."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from leadrecord.errors import DomainError

from .erasure import ErasedPerson
from .models import (
    ImportJob,
    ImportStatus,
)
from .touch_import_check import ERASED_ROW_MARK
from .touch_import_csv import KNOWN_COLUMNS, columns_named, csv_read, delimiter_of

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


def _content_without(
    text: str,
    person: ErasedPerson,
    *,
    keep_places: bool,
    column_map: dict[str, str] | None = None,
) -> _Scrubbed:
    """The file's text without the person: their rows (their email in the email column or
    in any cell) removed, and cells of ignored columns naming them emptied.

    A removed row becomes a blank line, so every other row keeps its number (and
    the external id made from it). With ``keep_places`` (a run under way, which
    numbers its chunks by position) it becomes a row marked ``ERASED_ROW_MARK``
    instead, which the check refuses. Raises csv.Error for text that is not CSV.
    The columns are read as the upload read them (``column_map``, then the names and
    the export aliases), so a mapped email column is found too.
    """
    delimiter = delimiter_of(text.lstrip().split("\n", 1)[0], column_map)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    names: list[str] | None = None
    removed: list[int] = []
    emptied = 0
    for number, record in enumerate(reader, start=1):
        if names is None or not any(cell.strip() for cell in record):
            if any(cell.strip() for cell in record):
                try:
                    names = columns_named(
                        [cell.strip().lower() for cell in record], column_map or {}
                    )
                except DomainError:
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
        scrubbed = _content_without(
            job.content, person, keep_places=running, column_map=job.column_map
        )
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
            left = len(csv_read(job.content, column_map=job.column_map).rows) if job.content else 0
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
