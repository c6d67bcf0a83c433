"""After erasure, old data never brings the person back: uploads lose their rows and
file names, stale imports and late events dated before the erasure are refused per
row, data dated after it is a person who came back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contacts import services, touch_import
from contacts.erasure import email_hashes
from contacts.models import (
    Contact,
    ErasedEmail,
    IdempotencyRecord,
    ImportJob,
    ImportMode,
    ImportStatus,
    Touch,
)
from events import touch_import as import_run
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
EMAIL = "Erin.Erasable@Gone.example"
ALIAS = "erin.alias@gone.example"
WHEN = "2026-01-15T09:30:00+01:00"  # before any erasure in these tests
HEADER = "email,channel,kind,occurred_at,notes\n"


def _erin() -> Contact:
    erin = contact_make(email=EMAIL, first_name="Erin", last_name="Erasable")
    alias = contact_make(email=ALIAS, first_name="Erin", last_name="Erasable")
    services.contact_merge(keep=erin, merge=alias, actor=SYSTEM)
    return erin


def _erase(contact: Contact, users: dict[str, Any], api_client_for: Any) -> None:
    response = api_client_for(users[Role.PRIVACY_OFFICER]).post(
        f"/api/v1/contacts/{contact.pk}/erase/"
    )
    assert response.status_code == 200, response.content


def _upload(client: Client, text: str, name: str = "Erin-Erasable touches.csv") -> ImportJob:
    response = client.post(
        reverse("touch-import"),
        {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")},
    )
    assert response.status_code == 302, response.content
    return ImportJob.objects.latest("pk")


def _start(client: Client, job: ImportJob, mode: str, capture: Any) -> ImportJob:
    with capture(execute=True):
        response = client.post(reverse("touch-import-start", args=[job.pk]), {"mode": mode})
    assert response.status_code == 302, response.content
    job.refresh_from_db()
    return job


def _named(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in (EMAIL.lower(), ALIAS, "erasable"))


STALE_FILE = (
    HEADER
    + f"{EMAIL},web,visit,{WHEN},\n"  # row 2: Erin
    + f"bob@else.example,web,visit,{WHEN},\n"  # row 3
    + f"{ALIAS.upper()},nowhere,visit,{WHEN},\n"  # row 4: Erin again, with a finding
    + f"carol@else.example,email,email_open,{WHEN},met Erin Erasable at the expo\n"  # row 5
)


def test_erasure_takes_the_person_out_of_an_upload_its_page_and_its_file_name(
    users, client, api_client_for, django_capture_on_commit_callbacks
):
    erin = _erin()
    client.force_login(users[Role.MARKETER])
    job = _upload(client, STALE_FILE)
    assert job.total == 4 and job.rejected == 1
    assert [error["row"] for error in job.errors] == [4]

    _erase(erin, users, api_client_for)

    job.refresh_from_db()
    assert not _named(job.content) and not _named(job.file_name)
    assert job.file_name == f"import-{job.pk}.csv"
    assert (job.total, job.rejected, job.errors) == (2, 0, [])
    page = client.get(reverse("touch-import-job", args=[job.pk])).content.decode()
    assert not _named(page)
    assert "bob@else.example" in page and "carol@else.example" in page
    assert not _named(client.get(reverse("touch-import")).content.decode())
    after = LedgerEntry.objects.get(action="contact.erase").after or {}
    assert after["scrubbed"] == {
        "import_jobs": [job.pk],
        "import_rows_removed": 2,
        "import_cells_emptied": 1,
        "import_file_names_replaced": [job.pk],
        "idempotency_answers": 0,
    }
    assert not _named(json.dumps(after))

    # Starting the stale import imports the others, under their own row numbers,
    # and never the erased person.
    job = _start(client, job, ImportMode.VALID_ROWS, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE
    assert (job.created, job.rejected) == (2, 0)
    assert job.row_report == {"created": [[3, 3], [5, 5]]}
    assert set(Touch.objects.values_list("contact__email", flat=True)) == {
        "bob@else.example",
        "carol@else.example",
    }
    assert not Contact.objects.filter(email_key__in=[EMAIL.lower(), ALIAS]).exists()


def test_the_rest_of_a_stale_upload_imports_all_or_nothing(
    users, client, api_client_for, django_capture_on_commit_callbacks
):
    erin = _erin()
    client.force_login(users[Role.MARKETER])
    job = _upload(client, STALE_FILE.replace(",nowhere,", ",web,"))
    _erase(erin, users, api_client_for)
    job = _start(client, job, ImportMode.ALL_OR_NOTHING, django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE and job.created == 2
    assert not Contact.objects.filter(email_key=EMAIL.lower()).exists()


def test_an_upload_of_nobody_but_the_person_is_left_with_nothing(
    users, client, api_client_for, django_capture_on_commit_callbacks
):
    erin = _erin()
    client.force_login(users[Role.MARKETER])
    job = _upload(client, HEADER + f"{EMAIL},web,visit,{WHEN},\n", name="touches.csv")
    _erase(erin, users, api_client_for)
    job.refresh_from_db()
    assert (job.status, job.content, job.total) == (ImportStatus.FAILED, "", 0)
    assert job.file_name == "touches.csv"  # it did not name her
    page = client.get(reverse("touch-import-job", args=[job.pk])).content.decode()
    assert "every row was about a person since erased" in page
    response = client.post(reverse("touch-import-start", args=[job.pk]), {"mode": "valid_rows"})
    assert response.status_code == 409
    assert Touch.objects.count() == 0


def test_a_run_under_way_keeps_its_row_places_and_refuses_the_persons_rows(
    users, api_client_for, django_capture_on_commit_callbacks
):
    erin = _erin()
    marketer = users[Role.MARKETER]
    job = touch_import.touch_import_upload(
        file_name="t.csv", raw=STALE_FILE.replace(",nowhere,", ",web,").encode(), user=marketer
    )
    with django_capture_on_commit_callbacks(execute=False):  # queued; no worker yet
        touch_import.touch_import_start(job=job, mode="valid_rows", actor=Actor.of(marketer))
    # A worker took it and stopped before its first chunk.
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING)
    _erase(erin, users, api_client_for)
    job.refresh_from_db()
    assert not _named(job.content)
    assert job.total == 4  # a run under way counts rows by their place

    run = import_run.touch_import_run(job_id=job.pk)
    assert run is not None and run.status == ImportStatus.DONE
    assert (run.created, run.rejected) == (2, 2)
    assert run.row_report == {"rejected": [[2, 2], [4, 4]], "created": [[3, 3], [5, 5]]}
    assert {error["message"] for error in run.errors} == {
        "This row was about a person who has since been erased; it is not imported."
    }
    assert not Contact.objects.filter(email_key__in=[EMAIL.lower(), ALIAS]).exists()


def test_an_upload_made_after_the_erasure_refuses_the_old_rows(
    users, client, api_client_for, django_capture_on_commit_callbacks
):
    erin = _erin()
    _erase(erin, users, api_client_for)
    client.force_login(users[Role.MARKETER])
    later = timezone.now().isoformat()
    job = _upload(
        client,
        HEADER + f"{EMAIL},web,visit,{WHEN},\n" + f"{EMAIL},web,visit,{later},\n",
        name="touches.csv",
    )
    # The preview already says which row will be refused, and why.
    assert (job.total, job.rejected) == (2, 1)
    assert job.errors == [
        {
            "row": 2,
            "field": "email",
            "message": (
                "This person has been erased; data dated before their erasure is not "
                "recorded again."
            ),
        }
    ]
    page = client.get(reverse("touch-import-job", args=[job.pk])).content.decode()
    assert "data dated before their erasure is not recorded again" in page
    job = _start(client, job, ImportMode.VALID_ROWS, django_capture_on_commit_callbacks)
    assert (job.created, job.rejected) == (1, 1)
    assert job.errors[0]["row"] == 2 and "erased" in job.errors[0]["message"]
    # The touch after the erasure is the person who came back, as someone new.
    (returned,) = Contact.objects.filter(email_key=EMAIL.lower())
    assert returned.pk != erin.pk
    assert list(Touch.objects.values_list("contact_id", flat=True)) == [returned.pk]


# --- events, touches, contacts -----------------------------------------------------------


def _event(number: int, email: str, occurred_at: str) -> dict[str, Any]:
    return {
        "type": "touch",
        "source_system": "crm",
        "external_id": f"e-{number}",
        "occurred_at": occurred_at,
        "contact": {"email": email, "first_name": "Erin"},
        "channel": "web",
        "kind": "visit",
    }


def test_events_about_the_person_dated_before_the_erasure_are_refused_per_event(
    users, api_client_for
):
    erin = _erin()
    _erase(erin, users, api_client_for)
    integration = api_client_for(users[Role.INTEGRATION])
    later = timezone.now().isoformat()
    consent = {
        "type": "consent",
        "source_system": "crm",
        "external_id": "c-1",
        "occurred_at": WHEN,
        "contact": {"email": ALIAS.upper()},
        "purpose": "marketing_email",
        "granted": True,
        "source": "form",
    }
    body = integration.post(
        "/api/v1/events/",
        {
            "events": [
                _event(1, EMAIL, WHEN),
                _event(2, "bob@else.example", WHEN),
                consent,
                _event(1, EMAIL, WHEN),  # a repeat of the first in the batch
                _event(3, f"  {EMAIL.lower()} ", later),
            ]
        },
        format="json",
    ).json()
    statuses = [result["status"] for result in body["results"]]
    assert statuses == ["rejected", "created", "rejected", "rejected", "created"]
    for index in (0, 2, 3):
        assert body["results"][index]["errors"] == [
            {
                "code": "contact_erased",
                "detail": (
                    "This person has been erased; data dated before their erasure is not "
                    "recorded again."
                ),
                "attr": "contact.email",
            }
        ]
    (returned,) = Contact.objects.filter(email_key=EMAIL.lower())
    assert returned.pk != erin.pk
    assert Touch.objects.get(pk=body["results"][4]["id"]).contact_id == returned.pk
    assert not Contact.objects.filter(email_key=ALIAS).exists()


def test_a_touch_or_contact_dated_before_the_erasure_is_refused(users, api_client_for):
    erin = _erin()
    _erase(erin, users, api_client_for)
    marketer = api_client_for(users[Role.MARKETER])
    before = (Contact.objects.count(), Touch.objects.count(), LedgerEntry.objects.count())
    for url, body in (
        ("/api/v1/touches/", {"contact_email": EMAIL, "channel": "web", "occurred_at": WHEN}),
        ("/api/v1/contacts/", {"email": ALIAS, "occurred_at": WHEN}),
    ):
        response = marketer.post(url, body, format="json")
        assert response.status_code == 409, response.content
        assert response.json()["errors"] == [
            {
                "code": "contact_erased",
                "detail": (
                    "This person has been erased; data dated before their erasure is not "
                    "recorded again."
                ),
                "attr": "occurred_at",
            }
        ]
    assert (Contact.objects.count(), Touch.objects.count(), LedgerEntry.objects.count()) == before

    # Now, or dated after the erasure: the person came back.
    response = marketer.post(
        "/api/v1/touches/", {"contact_email": EMAIL, "channel": "web"}, format="json"
    )
    assert response.status_code == 201
    later = timezone.now().isoformat()
    assert (
        marketer.post(
            "/api/v1/contacts/", {"email": ALIAS, "occurred_at": later}, format="json"
        ).status_code
        == 201
    )


def test_a_kept_answer_naming_the_person_is_forgotten(users, api_client_for):
    erin = _erin()
    integration = api_client_for(users[Role.INTEGRATION])
    event = _event(1, EMAIL, WHEN) | {"external_id": f"form-{EMAIL}"}
    first = integration.post(
        "/api/v1/events/", {"events": [event]}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert first.json()["created"] == 1
    other = integration.post(
        "/api/v1/events/",
        {"events": [_event(2, "bob@else.example", WHEN)]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert other.status_code == 200
    _erase(erin, users, api_client_for)
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["k-2"]
    after = LedgerEntry.objects.get(action="contact.erase").after or {}
    assert after["scrubbed"]["idempotency_answers"] == 1
    # A retry with the key runs afresh: the event is on record (as the erased
    # contact's), so it is a duplicate, and nobody is created.
    contacts = Contact.objects.count()
    again = integration.post(
        "/api/v1/events/", {"events": [event]}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert again.json()["duplicate"] == 1 and "Idempotent-Replayed" not in again
    assert Contact.objects.count() == contacts


@pytest.mark.parametrize("role", [Role.MARKETER, Role.SALES_REP, Role.MANAGER, Role.INTEGRATION])
def test_a_wrong_role_cannot_erase_and_leaves_uploads_and_hashes_alone(
    users, client, api_client_for, role
):
    erin = _erin()
    client.force_login(users[Role.MARKETER])
    job = _upload(client, STALE_FILE)
    response = api_client_for(users[role]).post(f"/api/v1/contacts/{erin.pk}/erase/")
    assert response.status_code == 403
    job.refresh_from_db()
    assert EMAIL in job.content and job.file_name == "Erin-Erasable touches.csv"
    assert not ErasedEmail.objects.exists()
    assert not LedgerEntry.objects.filter(action="contact.erase").exists()


def test_only_a_keyed_hash_of_each_email_is_kept(users, api_client_for, settings):
    erin = _erin()
    _erase(erin, users, api_client_for)
    kept = set(ErasedEmail.objects.values_list("email_hash", flat=True))
    assert kept == {email_hashes(EMAIL.lower())[0], email_hashes(ALIAS)[0]}
    # Keyed: another key gives other hashes, and the old key is still recognised.
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789abcdef"
    assert email_hashes(ALIAS)[0] not in kept and email_hashes(ALIAS)[1] in kept
    response = api_client_for(users[Role.MARKETER]).post(
        "/api/v1/contacts/", {"email": ALIAS, "occurred_at": WHEN}, format="json"
    )
    assert response.status_code == 409


def test_the_bulk_path_reads_erasures_once_per_batch_and_only_for_new_emails(users, api_client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    erin = _erin()
    _erase(erin, users, api_client_for)
    known = [contact_make(email=f"known{number}@else.example") for number in range(3)]
    integration = api_client_for(users[Role.INTEGRATION])

    def erasure_reads(events: list[dict[str, Any]]) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = integration.post("/api/v1/events/", {"events": events}, format="json")
        assert response.status_code == 200
        return sum(ErasedEmail._meta.db_table in query["sql"] for query in queries)

    fresh = [_event(10 + number, f"new{number}@else.example", WHEN) for number in range(50)]
    assert erasure_reads([*fresh, _event(99, EMAIL, WHEN)]) == 1
    on_record = [_event(200 + n, contact.email or "", WHEN) for n, contact in enumerate(known)]
    assert erasure_reads(on_record) == 0


def test_the_rewritten_file_keeps_its_dialect_quoted_lines_findings_and_row_numbers(
    users, api_client_for, django_capture_on_commit_callbacks
):
    erin = _erin()
    marketer = users[Role.MARKETER]
    raw = (
        "email;channel;kind;occurred_at;notes\r\n"
        f'bob@else.example;web;visit;{WHEN};"line one\r\nline two"\r\n'  # row 2, two lines
        f"{EMAIL.upper()};web;visit;{WHEN};\r\n"  # row 3: Erin
        f"=cmd@else.example;web;visit;{WHEN};\r\n"  # row 4: a formula, refused
        f'carol@else.example;email;email_open;{WHEN};"Erasable, Erin"\r\n'  # row 5
    ).encode()
    job = touch_import.touch_import_upload(
        file_name=f"<script>{EMAIL}</script>.csv", raw=raw, user=marketer
    )
    assert (job.total, job.rejected) == (4, 1)
    _erase(erin, users, api_client_for)
    job.refresh_from_db()
    assert not _named(job.content) and '"line one\r\nline two"' in job.content
    assert job.file_name == f"import-{job.pk}.csv"
    assert (job.total, job.rejected) == (3, 1)
    assert [(error["row"], error["field"]) for error in job.errors] == [(4, "email")]
    preview = touch_import.import_preview(job)
    assert preview is not None
    assert [row.number for row, _ in preview.rows] == [2, 4, 5]

    with django_capture_on_commit_callbacks(execute=True):
        touch_import.touch_import_start(job=job, mode="valid_rows", actor=Actor.of(marketer))
    job.refresh_from_db()
    assert job.row_report == {"created": [[2, 2], [5, 5]], "rejected": [[4, 4]]}
    assert not Contact.objects.filter(email_key=EMAIL.lower()).exists()


@pytest.mark.parametrize("times", [1, 2])
def test_erasing_twice_or_a_merged_contact_is_refused_and_scrubs_nothing_more(
    users, api_client_for, times
):
    erin = _erin()
    officer = api_client_for(users[Role.PRIVACY_OFFICER])
    alias = Contact.objects.get(email_key=ALIAS)
    # A merged contact is erased with the one it was merged into.
    assert officer.post(f"/api/v1/contacts/{alias.pk}/erase/").status_code == 404
    assert not ErasedEmail.objects.exists()
    for _ in range(times):
        officer.post(f"/api/v1/contacts/{erin.pk}/erase/")
    assert officer.post(f"/api/v1/contacts/{erin.pk}/erase/").status_code == 410
    assert officer.post("/api/v1/contacts/999999999/erase/").status_code == 404
    assert ErasedEmail.objects.count() == 2
    assert LedgerEntry.objects.filter(action="contact.erase").count() == 1
