"""The CSV touch import's store step: a queued job's rows go through ``events.ingest``.

Reading, checking and keeping the file, the preview and the user's choice are
``contacts.touch_import``'s; this runs the job it queued (the Celery task
``events.tasks.touch_import_run_task``), chunk by chunk, through the same
set-based path as ``POST /api/v1/events/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts.models import ImportJob, ImportMode, ImportStatus
from contacts.touch_import import (
    MAX_ERRORS_KEPT,
    CheckedRow,
    RowError,
    csv_read,
    rows_check,
)
from leadrecord.errors import DomainError
from leadrecord.ledger import Actor, ledger_append

from .ingest import MAX_EVENTS, events_ingest

logger = logging.getLogger(__name__)

# One events_ingest batch per chunk: its own limit, and one short transaction each.
CHUNK_ROWS = MAX_EVENTS


# --- the run ---------------------------------------------------------------------------


@dataclass
class _Tally:
    created: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    report: dict[str, list[list[int]]] = field(default_factory=dict)

    def add(self, number: int, status: str, errors: Sequence[RowError] = ()) -> None:
        if status == "created":
            self.created += 1
        elif status == "duplicate":
            self.duplicates += 1
        else:
            self.rejected += 1
            self.errors.extend(errors)
        ranges = self.report.setdefault(status, [])
        if ranges and ranges[-1][1] == number - 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])


def _ingest(rows: Sequence[CheckedRow], actor: Actor, tally: _Tally) -> None:
    """Send the chunk's good rows to events_ingest; tally every row of the chunk in order."""
    sendable = [row for row in rows if row.event is not None]
    results: dict[int, dict[str, Any]] = {}
    if sendable:
        answer = events_ingest(events=[row.event for row in sendable], actor=actor)
        results = {
            row.number: result for row, result in zip(sendable, answer.body["results"], strict=True)
        }
    for row in rows:
        if row.event is None:
            tally.add(row.number, "rejected", row.errors)
            continue
        result = results[row.number]
        errors = [
            RowError(
                row.number,
                str(error.get("attr") or "row").removeprefix("contact."),
                str(error.get("detail")),
            )
            for error in result["errors"]
        ]
        tally.add(row.number, result["status"], errors)


def _merge_report(
    report: dict[str, list[list[int]]], more: dict[str, list[list[int]]]
) -> dict[str, list[list[int]]]:
    merged = {status: [list(pair) for pair in ranges] for status, ranges in report.items()}
    for status, ranges in more.items():
        target = merged.setdefault(status, [])
        for first, last in ranges:
            if target and target[-1][1] == first - 1:
                target[-1][1] = last
            else:
                target.append([first, last])
    return merged


_PROGRESS_FIELDS = ["processed", "created", "duplicates", "rejected", "errors", "row_report"]


def _locked(job_id: int, *, missing_ok: bool = False) -> Any:
    """The job, locked for the rest of the transaction, without the file's text (up to
    10 MB, read once per run rather than once per chunk)."""
    jobs = ImportJob.objects.select_for_update().defer("content").filter(pk=job_id)
    return jobs.first() if missing_ok else jobs.get()


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _finish(job: ImportJob, *, status: str, message: str, actor: Actor) -> None:
    """The job's last write: its outcome, and the file's text dropped (it names people)."""
    job.status = status
    job.message = message
    job.finished_at = timezone.now()
    job.content = ""
    job.save(update_fields=[*_PROGRESS_FIELDS, "status", "message", "finished_at", "content"])
    ledger_append(
        actor=actor,
        action="touch_import.finish",
        subject_type="import_job",
        subject_id=job.pk,
        after={
            "status": status,
            "created": job.created,
            "duplicates": job.duplicates,
            "rejected": job.rejected,
        },
    )


class _AllOrNothingRefused(Exception):
    def __init__(self, tally: _Tally) -> None:
        super().__init__("rows rejected")
        self.tally = tally


def touch_import_run(*, job_id: int) -> ImportJob | None:
    """Import a queued job's rows in chunks of CHUNK_ROWS through ``events_ingest``.

    Safe to run twice, or at once from two workers: a job that is not queued or
    running is left alone, and each chunk is written in the same transaction
    as the job's progress, so a second run resumes after the last chunk written.
    Effects: touches (and new contacts) with their ledger entries; the job's
    progress and report; a ledger entry when it finishes.
    """
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.info("import job %s is gone", job_id)
            return None
        if job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            return job
        if job.status == ImportStatus.QUEUED:
            job.status, job.started_at = ImportStatus.RUNNING, timezone.now()
            job.processed = job.created = job.duplicates = job.rejected = 0
            job.errors, job.row_report = [], {}
            job.save(update_fields=[*_PROGRESS_FIELDS, "status", "started_at"])
    actor = Actor.of(job.created_by)
    try:
        rows = csv_read(job.content, column_map=job.column_map).rows
    except DomainError as refusal:
        with transaction.atomic():
            job = _locked(job_id)
            _finish(job, status=ImportStatus.FAILED, message=refusal.detail, actor=actor)
        return job
    checked = rows_check(rows, sha256=job.sha256, time_zone=job.time_zone)
    if job.mode == ImportMode.ALL_OR_NOTHING:
        return _run_all_or_nothing(job_id, checked, actor)
    return _run_valid_rows(job_id, checked, actor)


def _run_valid_rows(job_id: int, checked: list[CheckedRow], actor: Actor) -> ImportJob:
    for start in range(0, len(checked), CHUNK_ROWS):
        with transaction.atomic():
            job = _locked(job_id)
            if job.status != ImportStatus.RUNNING or job.processed > start:
                continue  # finished, or this chunk was written by an earlier run
            chunk = checked[start : start + CHUNK_ROWS]
            tally = _Tally()
            _ingest(chunk, actor, tally)
            job.processed = start + len(chunk)
            job.created += tally.created
            job.duplicates += tally.duplicates
            job.rejected += tally.rejected
            room = MAX_ERRORS_KEPT - len(job.errors)
            job.errors = job.errors + [error.as_dict() for error in tally.errors[: max(room, 0)]]
            job.row_report = _merge_report(job.row_report, tally.report)
            job.save(update_fields=_PROGRESS_FIELDS)
    with transaction.atomic():
        job = _locked(job_id)
        if job.status == ImportStatus.RUNNING:
            _finish(
                job,
                status=ImportStatus.DONE,
                message=(
                    f"{_count(job.created, 'touch', 'touches')} imported, "
                    f"{job.duplicates} already on record, "
                    f"{_count(job.rejected, 'row', 'rows')} not imported."
                ),
                actor=actor,
            )
    return job


def _run_all_or_nothing(job_id: int, checked: list[CheckedRow], actor: Actor) -> ImportJob:
    faulty = [row for row in checked if row.errors]
    if faulty:
        tally = _Tally()
        for row in faulty:
            tally.add(row.number, "rejected", row.errors)
        return _refuse_all(job_id, len(checked), tally, actor)
    try:
        # One transaction for the whole file: a row the ingest refuses (a
        # channel retired since the check) undoes the chunks before it. The
        # ledger lock is held throughout, which MAX_ROWS keeps to seconds.
        with transaction.atomic():
            job = _locked(job_id)
            if job.status != ImportStatus.RUNNING:
                return job
            tally = _Tally()
            for start in range(0, len(checked), CHUNK_ROWS):
                _ingest(checked[start : start + CHUNK_ROWS], actor, tally)
            if tally.rejected:
                raise _AllOrNothingRefused(tally)
            job.processed = len(checked)
            job.created, job.duplicates, job.rejected = (
                tally.created,
                tally.duplicates,
                tally.rejected,
            )
            job.row_report = tally.report
            _finish(
                job,
                status=ImportStatus.DONE,
                message=(
                    f"Every row taken: {_count(job.created, 'touch', 'touches')} imported, "
                    f"{job.duplicates} already on record."
                ),
                actor=actor,
            )
            return job
    except _AllOrNothingRefused as refusal:
        return _refuse_all(job_id, len(checked), refusal.tally, actor)


def _refuse_all(job_id: int, total: int, tally: _Tally, actor: Actor) -> ImportJob:
    with transaction.atomic():
        job = _locked(job_id)
        if job.status != ImportStatus.RUNNING:
            return job
        job.processed = total
        job.created = job.duplicates = 0
        job.rejected = tally.rejected
        job.errors = [error.as_dict() for error in tally.errors[:MAX_ERRORS_KEPT]]
        job.row_report = {"rejected": tally.report.get("rejected", [])}
        _finish(
            job,
            status=ImportStatus.FAILED,
            message=(
                f"{tally.rejected} of {_count(total, 'row', 'rows')} "
                f"{'has an error' if tally.rejected == 1 else 'have errors'}, so nothing was "
                "imported (all or nothing). Correct the file and upload it again."
            ),
            actor=actor,
        )
    return job


def touch_import_fail(*, job_id: int, message: str) -> None:
    """Mark a job failed after an unexpected error; chunks already written stay written."""
    with transaction.atomic():
        job = _locked(job_id, missing_ok=True)
        if job is None or job.is_finished:
            return
        _finish(job, status=ImportStatus.FAILED, message=message, actor=Actor.of(job.created_by))
