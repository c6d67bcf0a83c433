"""Imports of real files: values by key or label, a time zone for times without an offset,
the column mapping (remembered per user), HubSpot and Salesforce headers, and the template
file; bad files still get findings, never a 500."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from contacts import touch_import
from contacts.models import ImportJob, Touch
from contacts.touch_import_check import rows_check
from contacts.touch_import_csv import csv_read
from leadrecord.errors import InvalidInput
from leadrecord.roles import Role

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _file(text: str, name: str = "touches.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode())


def _upload(client: Client, text: str, **fields: str) -> Any:
    return client.post(reverse("touch-import"), {"file": _file(text), **fields})


def _check(text: str, **options: Any) -> list[Any]:
    column_map = options.pop("column_map", None)
    return rows_check(csv_read(text, column_map=column_map).rows, sha256="x", **options)


def test_kinds_and_channels_by_key_or_label():
    checked = _check(
        "email,channel,kind,occurred_at\n"
        "a@example.com,webinar,Email clicked,2026-05-01T09:30:00+02:00\n"
        "b@example.com,Paid search,email_click,2026-05-01T09:30:00+02:00\n"
        "c@example.com,WEB,WEBINAR ATTENDED,2026-05-01T09:30:00+02:00\n"
        "d@example.com,Email Marketing,Form submission,2026-05-01T09:30:00+02:00\n"
        "e@example.com,web,clicked-ish,2026-05-01T09:30:00+02:00\n"
    )
    events = [row.event for row in checked]
    assert [(e["channel"], e["kind"]) for e in events[:4] if e] == [
        ("webinar", "email_click"),
        ("paid_search", "email_click"),
        ("web", "webinar_attended"),
        ("email", "form"),
    ]
    assert events[4] is None
    assert "Email clicked (email_click)" in checked[4].errors[0].message


def test_times_without_an_offset_are_read_in_the_chosen_zone():
    text = (
        "email,channel,kind,occurred_at\n"
        "a@example.com,web,visit,2026-05-01 09:30\n"
        "b@example.com,web,visit,05/01/2026 9:30 AM\n"
        "c@example.com,web,visit,2026-05-01T09:30:00Z\n"
    )
    refused = _check(text)
    assert refused[0].event is None and "time zone" in refused[0].errors[0].message
    assert refused[2].event is not None  # an offset needs no zone
    berlin = _check(text, time_zone="Europe/Berlin")
    moments = [datetime.fromisoformat(row.event["occurred_at"]) for row in berlin if row.event]
    assert moments[0] == datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
    assert moments[1] == datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
    assert moments[2] == datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def test_hubspot_and_salesforce_headers_are_recognised():
    hubspot = csv_read(
        "Record ID,First Name,Email,Original Source,Activity Type,Activity Date\n"
        "101,Ada,ada@example.com,Paid search,Email clicked,2026-05-01T09:30:00Z\n"
    )
    assert hubspot.columns == ["external_id", "email", "channel", "kind", "occurred_at"]
    assert hubspot.ignored_columns == ["first name"]
    salesforce = csv_read(
        "Id,Email,Lead Source,Task Subtype,Created Date,Campaign Name\n"
        "00Q1,ada@example.com,Web,Call,05/01/2026 9:30 AM,\n"
    )
    assert set(salesforce.columns) == {
        "external_id",
        "email",
        "channel",
        "kind",
        "occurred_at",
        "campaign",
    }
    checked = rows_check(salesforce.rows, sha256="x", time_zone="America/New_York")
    assert checked[0].event is not None
    assert checked[0].event["external_id"] == "00Q1"
    assert checked[0].event["kind"] == "call"


def test_any_header_maps_to_any_field():
    parsed = csv_read(
        "Who,Where,What,When,Email\nada@example.com,web,visit,2026-05-01T09:30:00Z,x@y.z\n",
        column_map={"email": "who", "channel": "Where", "kind": "WHAT", "occurred_at": "when"},
    )
    assert parsed.rows[0].cells["email"] == "ada@example.com"
    assert "email (unused)" in parsed.ignored_columns
    with pytest.raises(InvalidInput) as refused:
        csv_read("a,b\n1,2\n", column_map={"email": "mail"})
    assert "'mail' (for email)" in refused.value.detail
    assert "'a', 'b'" in refused.value.detail
    with pytest.raises(InvalidInput):
        touch_import.column_map_clean({"password": "x"})
    with pytest.raises(InvalidInput):
        touch_import.column_map_clean({"email": "x" * 201})
    with pytest.raises(InvalidInput):
        touch_import.time_zone_clean("Mars/Olympus")


def test_the_page_maps_columns_remembers_them_and_imports(
    users, django_capture_on_commit_callbacks
):
    marketer = users[Role.MARKETER]
    client = _client(marketer)
    text = "Who,Where,What,When\nada@example.com,Webinar,Webinar attended,2026-05-01 09:30\n"
    refused = _upload(client, text)
    assert refused.status_code == 400
    assert "Missing columns" in refused.content.decode()
    assert "its columns are &#x27;who&#x27;, &#x27;where&#x27;" in refused.content.decode()
    assert ImportJob.objects.count() == 0
    mapping = {
        "column_email": "Who",
        "column_channel": "Where",
        "column_kind": "What",
        "column_occurred_at": "When",
        "time_zone": "Europe/Berlin",
    }
    response = _upload(client, text, **mapping)
    assert response.status_code == 302, response.content.decode()
    job = ImportJob.objects.get()
    assert job.column_map == {
        "email": "who",
        "channel": "where",
        "kind": "what",
        "occurred_at": "when",
    }
    assert job.time_zone == "Europe/Berlin"
    preview = client.get(response["Location"]).content.decode()
    assert "1 rows: 1 ready to import" in preview or "1 ready to import" in preview
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("touch-import-start", args=[job.pk]), {"mode": "all_or_nothing"})
    touch = Touch.objects.get()
    assert touch.occurred_at == datetime(2026, 5, 1, 7, 30, tzinfo=UTC)
    assert touch.kind == "webinar_attended"
    # The next upload form starts from this mapping and zone.
    form = client.get(reverse("touch-import")).context["form"]
    assert form["column_email"].value() == "who"
    assert form["time_zone"].value() == "Europe/Berlin"
    # Another user's form does not.
    other = _client(users[Role.MANAGER]).get(reverse("touch-import")).context["form"]
    assert not other["column_email"].value()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": HOSTILE}, "time_zone"),
        ({"column_email": "x" * 201}, "column_email"),
    ],
)
def test_bad_choices_are_a_400_naming_the_field(users, fields, field):
    response = _upload(
        _client(users[Role.MARKETER]),
        "email,channel,kind,occurred_at\na@example.com,web,visit,2026-05-01T09:30:00Z\n",
        **fields,
    )
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert "<script>" not in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_a_hostile_mapping_is_refused_without_echoing_markup(users):
    response = _upload(
        _client(users[Role.MARKETER]),
        "email,channel,kind,occurred_at\na@example.com,web,visit,2026-05-01T09:30:00Z\n",
        column_email=HOSTILE,
    )
    assert response.status_code == 400
    assert "<script>" not in response.content.decode()


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00e",
        b"Email,Activity Date\n",
        b'"unclosed,quote\n',
        b"Record ID,Email\n1,a@example.com\n",
    ],
)
def test_bad_real_files_get_findings_not_a_500(users, content):
    response = _client(users[Role.MARKETER]).post(
        reverse("touch-import"), {"file": SimpleUploadedFile("export.csv", content)}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["file"]


def test_the_template_file_imports_cleanly_with_a_zone(users):
    client = _client(users[Role.MARKETER])
    response = client.get(reverse("touch-import-template"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="touches-template.csv"'
    text = response.content.decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["email", "channel", "kind", "occurred_at"]
    checked = _check(text, time_zone="UTC")
    assert all(row.event is not None for row in checked), [row.errors for row in checked]


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_other_roles_get_no_template(users, role):
    assert _client(users[role]).get(reverse("touch-import-template")).status_code == 403


def test_erasure_finds_the_person_in_a_mapped_column(users):
    from contacts.services import contact_erase
    from leadrecord.ledger import Actor
    from tests.factories import contact_make

    person = contact_make(email="ada@example.com")
    client = _client(users[Role.MARKETER])
    response = _upload(
        client,
        "Who,Where,What,When,Note\n"
        "ada@example.com,web,visit,2026-05-01T09:30:00Z,call Ada Lovelace\n"
        "bob@example.com,web,visit,2026-05-01T09:30:00Z,Pat Example said hi\n",
        column_email="Who",
        column_channel="Where",
        column_kind="What",
        column_occurred_at="When",
    )
    assert response.status_code == 302
    contact_erase(contact=person, actor=Actor.system("test"))
    job = ImportJob.objects.get()
    assert "ada@example.com" not in job.content
    assert "Pat Example" not in job.content  # an ignored cell naming the person
    assert job.total == 1
    assert client.get(response["Location"]).status_code == 200
