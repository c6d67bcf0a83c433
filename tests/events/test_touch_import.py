"""The CSV import service: reading and checking files, the two modes, duplicates on
re-upload, the exact row report, and runs that are safe to repeat or resume."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from contacts import services, touch_import, touch_import_csv
from contacts.models import Channel, Contact, ImportJob, ImportMode, ImportStatus, Touch
from contacts.tasks import touch_imports_forget_abandoned_task
from events import touch_import as import_run
from events.tasks import touch_import_run_task
from leadrecord.errors import Conflict, DomainError, InvalidInput
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import UserFactory, contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
HEADER = "email,channel,campaign,kind,occurred_at,external_id\n"
WHEN = "2026-01-15T09:30:00+01:00"


@pytest.fixture
def marketer() -> Any:
    return UserFactory(username="maria", role=Role.MARKETER)


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return (header + "".join(f"{row}\n" for row in rows)).encode()


def upload(user: Any, raw: bytes, name: str = "touches.csv") -> ImportJob:
    return touch_import.touch_import_upload(file_name=name, raw=raw, user=user)


def run(job: ImportJob, mode: str, user: Any, capture: Any) -> ImportJob:
    """Start the job as its page does; the task runs eagerly after commit."""
    with capture(execute=True):
        touch_import.touch_import_start(job=job, mode=mode, actor=Actor.of(user))
    job.refresh_from_db()
    return job


def refused(raw: bytes) -> DomainError:
    with pytest.raises(DomainError) as caught:
        touch_import.csv_read(touch_import.csv_text(raw))
    assert caught.value.attr == "file"
    assert isinstance(caught.value, InvalidInput)
    return caught.value


# --- the file as a whole --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        (b"", "empty", "empty"),
        (b"  \n\n ", "empty", "empty"),
        ("email,channel\n".encode("utf-16"), "encoding", "UTF-16"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary", "binary"),
        (
            "email,channel,kind,occurred_at\nzoë@x.test,web,visit,2026\n".encode("latin-1"),
            "encoding",
            "not UTF-8",
        ),
        (
            b"email,channel,occurred_at\na@b.test,web,2026-01-01T00:00:00+00:00\n",
            "missing_columns",
            "Missing columns: kind",
        ),
        (b"name,phone\nAda,123\n", "missing_columns", "email, channel, kind, occurred_at"),
        (b"email,email,channel,kind,occurred_at\n", "repeated_columns", "email"),
        (HEADER.encode(), "no_rows", "no rows"),
        (HEADER.encode() + b'a@b.test,web,,visit,"2026"x,\n', "not_csv", "not valid CSV"),
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_with_a_reason(raw, code, words):
    refusal = refused(raw)
    assert refusal.code == code
    assert words in refusal.detail


def test_a_file_over_the_size_limit_is_refused(monkeypatch):
    monkeypatch.setattr(touch_import_csv, "MAX_FILE_BYTES", 100)
    refusal = refused(csv_bytes(*[f"p{n}@x.test,web,,visit,{WHEN}," for n in range(5)]))
    assert refusal.code == "too_large"
    assert "limit" in refusal.detail


def test_a_file_with_too_many_rows_is_refused(monkeypatch):
    monkeypatch.setattr(touch_import_csv, "MAX_ROWS", 3)
    raw = csv_bytes(*[f"p{n}@x.test,web,,visit,{WHEN}," for n in range(4)])
    assert "more than 3 rows" in refused(raw).detail
    ok = csv_bytes(*[f"p{n}@x.test,web,,visit,{WHEN}," for n in range(3)])
    assert len(touch_import.csv_read(touch_import.csv_text(ok)).rows) == 3


def test_headers_are_read_loosely_and_rows_numbered_as_in_a_spreadsheet():
    raw = (
        "\ufeff Email ;CHANNEL;Kind;occurred_at;notes\n"
        f"a@x.test;web;visit;{WHEN};first\n"
        "\n"
        f'"b@x.test";email;email_click;{WHEN};"multi\nline"\n'
        f"c@x.test;web;visit;{WHEN}\n"
    ).encode()
    parsed = touch_import.csv_read(touch_import.csv_text(raw))
    assert parsed.columns == ["email", "channel", "kind", "occurred_at"]
    assert parsed.ignored_columns == ["notes"]
    assert [row.number for row in parsed.rows] == [2, 4, 5]
    assert parsed.rows[1].cells == {
        "email": "b@x.test",
        "channel": "email",
        "kind": "email_click",
        "occurred_at": WHEN,
    }


# --- the rows -------------------------------------------------------------------------


def check(*rows: str, header: str = HEADER) -> list[touch_import.CheckedRow]:
    parsed = touch_import.csv_read(touch_import.csv_text(csv_bytes(*rows, header=header)))
    return touch_import.rows_check(parsed.rows, sha256="f" * 64)


def event_of(row: touch_import.CheckedRow) -> dict[str, Any]:
    assert row.event is not None, row.errors
    return row.event


def errors_of(checked: list[touch_import.CheckedRow]) -> list[tuple[int, str]]:
    return [(error.row, error.field) for row in checked for error in row.errors]


def test_each_bad_cell_is_named_by_row_and_field():
    future = (timezone.now() + timedelta(days=2)).isoformat()
    checked = check(
        f"good@x.test,web,,visit,{WHEN},",
        f"not-an-email,web,,visit,{WHEN},",
        f",web,,visit,{WHEN},",
        f"a@x.test,telepathy,,visit,{WHEN},",
        f"a@x.test,web,,stare,{WHEN},",
        "a@x.test,web,,visit,2026-01-15T09:30:00,",
        "a@x.test,web,,visit,yesterday,",
        f"a@x.test,web,,visit,{future},",
        f"a@x.test,web,no such campaign,visit,{WHEN},",
        f"a@x.test,web,,visit,{WHEN},{'x' * 201}",
        f"a@x.test,web,,visit,{WHEN},,surplus",
        ",,,,,",  # blank: not a row at all
        f"a@x.test,web,,,{WHEN},",
    )
    assert checked[0].errors == [] and checked[0].event is not None
    assert errors_of(checked[1:]) == [
        (3, "email"),
        (4, "email"),
        (5, "channel"),
        (6, "kind"),
        (7, "occurred_at"),
        (8, "occurred_at"),
        (9, "occurred_at"),
        (10, "campaign"),
        (11, "external_id"),
        (12, "row"),
        (14, "kind"),
    ]
    messages = {error.field: error.message for row in checked for error in row.errors}
    assert "UTC offset" in messages["occurred_at"] or "future" in messages["occurred_at"]
    assert all(row.event is None for row in checked[1:])


@pytest.mark.parametrize("cell", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)"])
def test_formula_cells_are_refused(cell):
    checked = check(f"a@x.test,web,,visit,{WHEN},{cell}", f'"{cell}@x.test",web,,visit,{WHEN},')
    assert errors_of(checked) == [(2, "external_id"), (3, "email")]
    assert "formula" in checked[0].errors[0].message


def test_campaigns_are_found_by_id_or_name_and_must_be_on_the_rows_channel():
    web = Channel.objects.get(key="web")
    spring = services.campaign_create(name="Spring Launch", channel=web, actor=SYSTEM)
    checked = check(
        f"a@x.test,web,{spring.pk},visit,{WHEN},",
        f"a@x.test,web,spring launch,visit,{WHEN},",
        f"a@x.test,email,Spring Launch,visit,{WHEN},",
        f"a@x.test,web,{spring.pk + 99},visit,{WHEN},",
    )
    assert event_of(checked[0])["campaign"] == spring.pk
    assert event_of(checked[1])["campaign"] == spring.pk
    assert errors_of(checked[2:]) == [(4, "campaign"), (5, "campaign")]
    assert "runs on channel web, not email" in checked[2].errors[0].message


def test_a_row_without_an_external_id_gets_one_from_the_file_and_row():
    checked = check(f"a@x.test,web,,visit,{WHEN},", f"a@x.test,web,,visit,{WHEN},given-7")
    assert event_of(checked[0])["external_id"] == f"sha256:{'f' * 64}:row:2"
    assert event_of(checked[0])["source_system"] == "csv-import"
    assert event_of(checked[1])["external_id"] == "given-7"


# --- upload, start and run ------------------------------------------------------------


def test_an_upload_keeps_the_file_and_its_findings_and_writes_nothing_else(marketer):
    ledger_before = LedgerEntry.objects.count()
    raw = csv_bytes(f"a@x.test,web,,visit,{WHEN},", f"bad,web,,visit,{WHEN},")
    job = upload(marketer, raw, name="<b>spring</b>.csv")
    assert job.status == ImportStatus.UPLOADED
    assert job.sha256 == hashlib.sha256(raw).hexdigest()
    assert job.content == raw.decode()
    assert (job.total, job.rejected) == (2, 1)
    assert job.errors == [{"row": 3, "field": "email", "message": "Enter a valid email address."}]
    assert job.file_name == "<b>spring</b>.csv"
    assert Touch.objects.count() == 0
    assert Contact.objects.count() == 0
    assert LedgerEntry.objects.count() == ledger_before


def test_valid_rows_mode_imports_the_good_rows_and_reports_each_row(
    marketer, django_capture_on_commit_callbacks
):
    known = contact_make(email="known@x.test")
    raw = csv_bytes(
        f"known@x.test,web,,visit,{WHEN},",
        f"new@x.test,email,,email_click,{WHEN},",
        f"bad,web,,visit,{WHEN},",
        f"third@x.test,web,,download,{WHEN},",
        f"new@x.test,web,,visit,{WHEN},dup-1",
        f"new@x.test,web,,visit,{WHEN},dup-1",
    )
    job = run(
        upload(marketer, raw), ImportMode.VALID_ROWS, marketer, django_capture_on_commit_callbacks
    )
    assert job.status == ImportStatus.DONE
    assert (job.total, job.processed, job.created, job.duplicates, job.rejected) == (6, 6, 4, 1, 1)
    assert job.row_report == {
        "created": [[2, 3], [5, 6]],
        "rejected": [[4, 4]],
        "duplicate": [[7, 7]],
    }
    assert job.errors == [{"row": 4, "field": "email", "message": "Enter a valid email address."}]
    assert job.content == ""  # the file named people: not kept once imported
    assert Touch.objects.count() == 4
    assert Touch.objects.filter(contact=known).count() == 1
    new = Contact.objects.get(email_key="new@x.test")
    assert sorted(new.touches.values_list("kind", flat=True)) == ["email_click", "visit"]
    touch = new.touches.get(kind="visit")
    assert touch.occurred_at == datetime.fromisoformat(WHEN)
    assert (touch.source_system, touch.external_id) == ("csv-import", "dup-1")
    assert touch.recorded_by == marketer
    assert LedgerEntry.objects.filter(subject_type="touch").count() == 4
    assert LedgerEntry.objects.filter(action="touch_import.start", subject_id=str(job.pk)).exists()
    finish = LedgerEntry.objects.get(action="touch_import.finish", subject_id=str(job.pk))
    assert finish.after == {"status": "done", "created": 4, "duplicates": 1, "rejected": 1}


def test_all_or_nothing_imports_nothing_when_any_row_is_wrong(
    marketer, django_capture_on_commit_callbacks
):
    raw = csv_bytes(
        f"a@x.test,web,,visit,{WHEN},",
        f"b@x.test,web,,stare,{WHEN},",
        f"c@x.test,web,,visit,{WHEN},",
        f"d@x.test,nowhere,,visit,{WHEN},",
    )
    job = run(
        upload(marketer, raw),
        ImportMode.ALL_OR_NOTHING,
        marketer,
        django_capture_on_commit_callbacks,
    )
    assert job.status == ImportStatus.FAILED
    assert (job.created, job.duplicates, job.rejected, job.processed) == (0, 0, 2, 4)
    assert [(error["row"], error["field"]) for error in job.errors] == [(3, "kind"), (5, "channel")]
    assert job.row_report == {"rejected": [[3, 3], [5, 5]]}
    assert "nothing was imported" in job.message
    assert Touch.objects.count() == 0
    assert Contact.objects.count() == 0


def test_all_or_nothing_imports_every_row_of_a_good_file(
    marketer, django_capture_on_commit_callbacks
):
    raw = csv_bytes(*[f"p{n}@x.test,web,,visit,{WHEN}," for n in range(5)])
    job = run(
        upload(marketer, raw),
        ImportMode.ALL_OR_NOTHING,
        marketer,
        django_capture_on_commit_callbacks,
    )
    assert job.status == ImportStatus.DONE
    assert (job.created, job.duplicates, job.rejected) == (5, 0, 0)
    assert job.row_report == {"created": [[2, 6]]}
    assert Touch.objects.count() == 5


def test_all_or_nothing_undoes_earlier_chunks_when_the_ingest_refuses_a_later_row(
    marketer, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(import_run, "CHUNK_ROWS", 2)
    raw = csv_bytes(*[f"p{n}@x.test,web,,visit,{WHEN}," for n in range(5)])
    job = upload(marketer, raw)
    real_check = touch_import.rows_check

    def check_then_retire(*args: Any, **kwargs: Any) -> Any:
        checked = real_check(*args, **kwargs)
        event_of(checked[-1])["channel"] = "retired-meanwhile"  # as if retired after the check
        return checked

    monkeypatch.setattr(import_run, "rows_check", check_then_retire)
    job = run(job, ImportMode.ALL_OR_NOTHING, marketer, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.FAILED
    assert (job.created, job.rejected) == (0, 1)
    assert job.errors[0]["row"] == 6 and job.errors[0]["field"] == "channel"
    assert Touch.objects.count() == 0
    assert Contact.objects.count() == 0


def test_uploading_the_same_file_again_finds_duplicates_not_new_touches(
    marketer, django_capture_on_commit_callbacks
):
    raw = csv_bytes(*[f"p{n}@x.test,web,,visit,{WHEN}," for n in range(3)])
    first = run(
        upload(marketer, raw), ImportMode.VALID_ROWS, marketer, django_capture_on_commit_callbacks
    )
    again = upload(UserFactory(username="mo", role=Role.MANAGER), raw, name="renamed.csv")
    assert touch_import.import_same_file_before(again) == first
    second = run(again, ImportMode.ALL_OR_NOTHING, marketer, django_capture_on_commit_callbacks)
    assert (first.created, first.duplicates) == (3, 0)
    assert second.status == ImportStatus.DONE
    assert (second.created, second.duplicates) == (0, 3)
    assert second.row_report == {"duplicate": [[2, 4]]}
    assert Touch.objects.count() == 3


def test_running_a_job_twice_imports_once(marketer, django_capture_on_commit_callbacks):
    raw = csv_bytes(*[f"p{n}@x.test,web,,visit,{WHEN}," for n in range(3)])
    job = run(
        upload(marketer, raw), ImportMode.VALID_ROWS, marketer, django_capture_on_commit_callbacks
    )
    ledger = LedgerEntry.objects.count()
    assert touch_import_run_task.delay(job.pk).get() == "done"
    job.refresh_from_db()
    assert (job.created, job.duplicates) == (3, 0)
    assert Touch.objects.count() == 3
    assert LedgerEntry.objects.count() == ledger


def test_a_job_not_started_is_not_run_and_a_missing_one_is_ignored(marketer):
    job = upload(marketer, csv_bytes(f"a@x.test,web,,visit,{WHEN},"))
    assert touch_import_run_task.delay(job.pk).get() == "uploaded"
    assert touch_import_run_task.delay(job.pk + 1000).get() is None
    assert Touch.objects.count() == 0


def test_a_run_cut_short_resumes_after_its_last_chunk(marketer, monkeypatch):
    monkeypatch.setattr(import_run, "CHUNK_ROWS", 2)
    raw = csv_bytes(*[f"p{n}@x.test,web,,visit,{WHEN}," for n in range(5)])
    job = upload(marketer, raw)
    touch_import.touch_import_start(job=job, mode=ImportMode.VALID_ROWS, actor=SYSTEM)
    real_ingest = import_run.events_ingest
    calls = []

    def ingest_then_die(**kwargs: Any) -> Any:
        calls.append(len(kwargs["events"]))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worker is killed in the middle of chunk two
        return real_ingest(**kwargs)

    monkeypatch.setattr(import_run, "events_ingest", ingest_then_die)
    with pytest.raises(KeyboardInterrupt):
        import_run.touch_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed, job.created) == (ImportStatus.RUNNING, 2, 2)
    assert Touch.objects.count() == 2

    monkeypatch.setattr(import_run, "events_ingest", real_ingest)
    import_run.touch_import_run(job_id=job.pk)  # the task delivered again
    job.refresh_from_db()
    assert (job.status, job.processed, job.created, job.duplicates) == ("done", 5, 5, 0)
    assert job.row_report == {"created": [[2, 6]]}
    assert Touch.objects.count() == 5


def test_an_unexpected_error_fails_the_job_without_raising(
    marketer, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(import_run, "events_ingest", broken)
    job = run(
        upload(marketer, csv_bytes(f"a@x.test,web,,visit,{WHEN},")),
        ImportMode.VALID_ROWS,
        marketer,
        django_capture_on_commit_callbacks,
    )
    assert job.status == ImportStatus.FAILED
    assert "unexpected error" in job.message
    assert Touch.objects.count() == 0


def test_a_job_starts_once_and_only_in_a_known_mode(marketer, django_capture_on_commit_callbacks):
    job = upload(marketer, csv_bytes(f"a@x.test,web,,visit,{WHEN},"))
    with pytest.raises(DomainError) as unknown:
        touch_import.touch_import_start(job=job, mode="some", actor=SYSTEM)
    assert isinstance(unknown.value, InvalidInput) and unknown.value.attr == "mode"
    run(job, ImportMode.VALID_ROWS, marketer, django_capture_on_commit_callbacks)
    with pytest.raises(DomainError) as again:
        touch_import.touch_import_start(job=job, mode=ImportMode.VALID_ROWS, actor=SYSTEM)
    assert isinstance(again.value, Conflict)
    assert Touch.objects.count() == 1


def test_files_never_imported_are_forgotten_after_a_day(marketer):
    stale = upload(marketer, csv_bytes(f"a@x.test,web,,visit,{WHEN},"))
    ImportJob.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=25))
    fresh = upload(marketer, csv_bytes(f"b@x.test,web,,visit,{WHEN},"))
    assert not ImportJob.objects.filter(pk=stale.pk).exists()  # the upload cleared it
    ImportJob.objects.filter(pk=fresh.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert touch_imports_forget_abandoned_task.delay().get() == 1


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_imports_a_file_once_even_when_the_task_is_sent_twice(monkeypatch):
    from leadrecord.ledger import ledger_verify

    from ..workers import celery_worker_process

    user = UserFactory(username="maria", role=Role.MARKETER)
    raw = csv_bytes(*[f"p{n}@x.test,web,,visit,{WHEN}," for n in range(2500)])
    job = upload(user, raw)
    with celery_worker_process(concurrency=2):
        touch_import.touch_import_start(job=job, mode=ImportMode.VALID_ROWS, actor=SYSTEM)
        # A retry racing the first delivery: both runs share the chunks, none twice.
        touch_import_run_task.delay(job.pk)
        deadline = timezone.now() + timedelta(seconds=90)
        while not ImportJob.objects.get(pk=job.pk).is_finished:
            assert timezone.now() < deadline, "the worker did not finish within 90 s"
            time.sleep(0.2)
    job.refresh_from_db()
    assert (job.status, job.processed, job.created, job.duplicates) == ("done", 2500, 2500, 0)
    assert job.row_report == {"created": [[2, 2501]]}
    assert Touch.objects.count() == 2500
    assert LedgerEntry.objects.filter(action="touch_import.finish").count() == 1
    assert ledger_verify().ok
