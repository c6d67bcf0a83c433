"""The touch pages: logging a touch, campaigns, channels and CSV imports, by role, with
good, wrong, missing, oversized, duplicate and hostile input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from contacts import services, touch_import_csv
from contacts.models import Campaign, Channel, Contact, ImportJob, ImportStatus, Touch
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
TOUCH_ROLES = {Role.MARKETER, Role.MANAGER}
WHEN = "2026-01-15T09:30:00+01:00"
CSV_HEADER = "email,channel,campaign,kind,occurred_at,external_id\n"


def html(response: Any) -> str:
    return response.content.decode()


def login(client: Client, users: dict[str, Any], role: str) -> Client:
    client.force_login(users[role])
    return client


def counts() -> tuple[int, ...]:
    """Every table these pages may write, and the ledger."""
    return (
        Touch.objects.count(),
        Campaign.objects.count(),
        Channel.objects.count(),
        Contact.objects.count(),
        ImportJob.objects.count(),
        LedgerEntry.objects.count(),
    )


@pytest.fixture
def ada() -> Contact:
    contact, _ = services.contact_create(
        email="Ada@Example.com", first_name="Ada", last_name="Lovelace", actor=SYSTEM
    )
    return contact


@pytest.fixture
def spring() -> Campaign:
    return services.campaign_create(
        name="Spring Launch", channel=Channel.objects.get(key="webinar"), actor=SYSTEM
    )


def touch_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "contact_email": "ada@example.com",
        "channel": "webinar",
        "campaign": "",
        "kind": "webinar_attended",
        "occurred_at": "2026-01-15T09:30",
        "submission": str(uuid.uuid4()),
    }
    data.update(overrides)
    return data


# --- who may open which page -------------------------------------------------------------

PAGES = ["touches", "campaigns", "channels", "touch-import"]


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("role", Role.values)
def test_each_page_is_open_to_marketers_and_managers_only(name, role, users, client):
    response = login(client, users, role).get(reverse(name))
    assert response.status_code == (200 if role in TOUCH_ROLES else 403)


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_log_in_and_users_without_a_role_refused(
    name, client, make_user
):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse(name)}"
    client.force_login(make_user())
    assert client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("role", Role.values)
def test_the_touches_link_is_in_the_navigation_of_marketers_and_managers(role, users, client):
    page = html(login(client, users, role).get(reverse("home")))
    assert (f'<a href="{reverse("touches")}"' in page) == (role in TOUCH_ROLES)


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_posts_from_other_roles_are_refused_and_change_nothing(role, users, client, ada):
    before = counts()
    login(client, users, role)
    assert client.post(reverse("touches"), touch_data()).status_code == 403
    campaign = {"name": "X", "channel": "web", "cost": "1"}
    assert client.post(reverse("campaigns"), campaign).status_code == 403
    assert client.post(reverse("channels"), {"key": "x", "team": "sales"}).status_code == 403
    upload = SimpleUploadedFile("t.csv", b"email,channel,kind,occurred_at\n")
    assert client.post(reverse("touch-import"), {"file": upload}).status_code == 403
    assert counts() == before


def test_every_form_carries_a_csrf_token_and_posts_without_one_are_refused(users, ada):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users[Role.MANAGER])
    for name in PAGES:
        assert 'name="csrfmiddlewaretoken"' in html(client.get(reverse(name)))
    before = counts()
    assert client.post(reverse("touches"), touch_data()).status_code == 403
    assert client.post(reverse("channels"), {"key": "x", "team": "sales"}).status_code == 403
    assert counts() == before


# --- logging a touch ---------------------------------------------------------------------


def test_a_marketer_logs_a_touch_and_sees_it_below_the_form(users, client, ada, spring):
    login(client, users, Role.MARKETER)
    response = client.post(reverse("touches"), touch_data(campaign=str(spring.pk)), follow=True)
    assert response.redirect_chain == [(reverse("touches"), 302)]
    assert "Touch recorded for Ada Lovelace." in html(response)
    touch = Touch.objects.get()
    assert (touch.contact, touch.channel.key, touch.campaign, touch.kind) == (
        ada,
        "webinar",
        spring,
        "webinar_attended",
    )
    assert touch.occurred_at == datetime(2026, 1, 15, 9, 30, tzinfo=UTC)  # TIME_ZONE is UTC
    assert touch.recorded_by == users[Role.MARKETER]
    entry = LedgerEntry.objects.get(action="touch.record")
    assert entry.actor_id == users[Role.MARKETER].pk
    assert entry.contact_id == ada.pk
    latest = html(response).split('id="latest-heading"')[1]
    assert "Ada Lovelace" in latest and "Spring Launch" in latest and "Webinar attended" in latest


def test_an_empty_time_means_now(users, client, ada):
    login(client, users, Role.MANAGER)
    before = timezone.now()
    assert client.post(reverse("touches"), touch_data(occurred_at="")).status_code == 302
    assert Touch.objects.get().occurred_at >= before


@override_settings(TIME_ZONE="Europe/Berlin")
def test_the_time_is_read_in_the_reporting_time_zone(users, client, ada):
    login(client, users, Role.MARKETER)
    page = html(client.get(reverse("touches")))
    assert "Time zone: Europe/Berlin." in page
    assert client.post(reverse("touches"), touch_data()).status_code == 302
    assert Touch.objects.get().occurred_at == datetime(2026, 1, 15, 8, 30, tzinfo=UTC)


@override_settings(TIME_ZONE="Europe/Berlin")
def test_a_time_that_does_not_exist_in_the_reporting_zone_is_refused(users, client, ada):
    # Clocks in Berlin jump from 02:00 to 03:00 on 29 March 2026.
    response = login(client, users, Role.MARKETER).post(
        reverse("touches"), touch_data(occurred_at="2026-03-29T02:30")
    )
    assert response.status_code == 400
    assert 'id="id_occurred_at_error"' in html(response)
    assert Touch.objects.count() == 0


def test_the_same_form_sent_twice_records_one_touch(users, client, ada):
    login(client, users, Role.MARKETER)
    data = touch_data()
    assert client.post(reverse("touches"), data).status_code == 302
    second = client.post(reverse("touches"), data, follow=True)
    assert "This form was sent before: the touch is recorded once." in html(second)
    assert Touch.objects.count() == 1
    # A form without its token (or a mangled one) still records, just without the safeguard.
    assert client.post(reverse("touches"), touch_data(submission="")).status_code == 302
    assert client.post(reverse("touches"), touch_data(submission=HOSTILE)).status_code == 302
    assert Touch.objects.count() == 3


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"contact_email": ""}, "contact_email"),
        ({"contact_email": "not-an-email"}, "contact_email"),
        ({"contact_email": "nobody@example.com"}, "contact_email"),
        ({"contact_email": "a" * 250 + "@example.com"}, "contact_email"),
        ({"contact_email": HOSTILE}, "contact_email"),
        ({"channel": ""}, "channel"),
        ({"channel": "telepathy"}, "channel"),
        ({"channel": HOSTILE}, "channel"),
        ({"kind": ""}, "kind"),
        ({"kind": "stare"}, "kind"),
        ({"campaign": "999999"}, "campaign"),
        ({"campaign": "x" * 30}, "campaign"),
        ({"campaign": "-1"}, "campaign"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2999-01-01T00:00"}, "occurred_at"),
    ],
)
def test_bad_input_is_shown_on_its_field_and_records_nothing(overrides, field, users, client, ada):
    before = counts()
    response = login(client, users, Role.MARKETER).post(reverse("touches"), touch_data(**overrides))
    assert response.status_code == 400
    page = html(response)
    assert f'id="id_{field}_error"' in page
    assert "<script>alert(1)</script>" not in page
    assert counts() == before


def test_a_campaign_must_run_on_the_chosen_channel(users, client, ada, spring):
    response = login(client, users, Role.MARKETER).post(
        reverse("touches"), touch_data(channel="email", campaign=str(spring.pk))
    )
    assert response.status_code == 400
    assert "This campaign runs on channel webinar, not email." in html(response)
    assert Touch.objects.count() == 0


def test_an_erased_or_retired_target_cannot_be_chosen(users, client, ada):
    services.channel_update(
        channel=Channel.objects.get(key="webinar"), team="marketing", active=False, actor=SYSTEM
    )
    login(client, users, Role.MARKETER)
    assert 'value="webinar"' not in html(client.get(reverse("touches")))
    assert client.post(reverse("touches"), touch_data()).status_code == 400
    services.contact_erase(contact=ada, actor=SYSTEM)
    response = client.post(reverse("touches"), touch_data(channel="web"))
    assert response.status_code == 400
    assert "No contact on record has this email" in html(response)
    assert Touch.objects.count() == 0


def test_the_search_lists_matching_contacts_and_picks_one(users, client, ada):
    services.contact_create(email="charles@babbage.test", first_name="Charles", actor=SYSTEM)
    login(client, users, Role.MARKETER)
    page = html(client.get(reverse("touches"), {"q": "lovelace"}))
    assert "Use Ada Lovelace" in page
    assert "Charles" not in page.split('id="matches"')[1].split("</section>")[0]
    assert f'href="{reverse("touches")}?email=Ada%40Example.com"' in page
    assert '<option value="Ada@Example.com">' in page  # the datalist
    picked = html(client.get(reverse("touches"), {"email": "Ada@Example.com"}))
    assert 'value="Ada@Example.com"' in picked
    assert "No contact matches." in html(client.get(reverse("touches"), {"q": "nobody"}))


def test_a_hostile_or_oversized_search_is_harmless(users, client, ada):
    login(client, users, Role.MARKETER)
    response = client.get(reverse("touches"), {"q": "x" * 201})
    assert response.status_code == 400
    assert 'id="id_q_error"' in html(response)
    page = html(client.get(reverse("touches"), {"q": HOSTILE, "email": HOSTILE}))
    assert HOSTILE not in page
    assert HOSTILE_ESCAPED in page


# --- campaigns -------------------------------------------------------------------------


def campaign_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Autumn Webinar Series",
        "channel": "webinar",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "autumn-2026",
        "cost": "1234.50",
    }
    data.update(overrides)
    return data


def test_a_marketer_adds_a_campaign_and_sees_it_listed(users, client):
    login(client, users, Role.MARKETER)
    response = client.post(reverse("campaigns"), campaign_data(), follow=True)
    assert response.redirect_chain == [(reverse("campaigns"), 302)]
    page = html(response)
    assert "Campaign Autumn Webinar Series added." in page
    assert "autumn-2026" in page and "1234.50" in page
    campaign = Campaign.objects.get()
    assert (campaign.channel.key, str(campaign.cost), campaign.utm_source) == (
        "webinar",
        "1234.50",
        "newsletter",
    )
    entry = LedgerEntry.objects.get(action="campaign.create")
    assert entry.actor_id == users[Role.MARKETER].pk


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"channel": ""}, "channel"),
        ({"channel": "nowhere"}, "channel"),
        ({"cost": "-1"}, "cost"),
        ({"cost": "ten"}, "cost"),
        ({"cost": "1.234"}, "cost"),
        ({"cost": "1" * 13}, "cost"),
        ({"cost": "NaN"}, "cost"),
        ({"cost": ""}, "cost"),
        ({"utm_source": "x" * 201}, "utm_source"),
    ],
)
def test_bad_campaigns_are_refused_on_their_field(overrides, field, users, client):
    before = counts()
    response = login(client, users, Role.MANAGER).post(
        reverse("campaigns"), campaign_data(**overrides)
    )
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in html(response)
    assert counts() == before


def test_a_campaign_name_is_taken_once_whatever_its_case(users, client, spring):
    before = counts()
    response = login(client, users, Role.MARKETER).post(
        reverse("campaigns"), campaign_data(name="SPRING launch")
    )
    assert response.status_code == 400
    assert 'id="id_name_error"' in html(response)
    assert "exists" in html(response)
    assert counts() == before


def test_hostile_campaign_values_are_stored_as_text_and_shown_escaped(users, client):
    login(client, users, Role.MARKETER)
    assert client.post(reverse("campaigns"), campaign_data(name=HOSTILE)).status_code == 302
    page = html(client.get(reverse("campaigns")))
    assert HOSTILE not in page
    assert HOSTILE_ESCAPED in page


# --- channels -------------------------------------------------------------------------


def test_a_manager_adds_a_channel_with_its_team(users, client):
    login(client, users, Role.MANAGER)
    response = client.post(
        reverse("channels"), {"key": "trade_show", "team": "marketing"}, follow=True
    )
    assert "Channel trade_show added." in html(response)
    assert Channel.objects.get(key="trade_show").team == "marketing"
    assert LedgerEntry.objects.filter(action="channel.create").count() == 1


def test_a_marketer_sees_the_channels_but_cannot_add_one(users, client):
    login(client, users, Role.MARKETER)
    page = html(client.get(reverse("channels")))
    assert "paid_search" in page and "sales_call" in page
    assert "Add a channel" not in page
    before = counts()
    assert client.post(reverse("channels"), {"key": "x", "team": "sales"}).status_code == 403
    assert counts() == before


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"key": "web", "team": "marketing"}, "key"),
        ({"key": "", "team": "marketing"}, "key"),
        ({"key": "has space", "team": "marketing"}, "key"),
        ({"key": HOSTILE, "team": "marketing"}, "key"),
        ({"key": "x" * 41, "team": "marketing"}, "key"),
        ({"key": "fair", "team": "aliens"}, "team"),
        ({"key": "fair", "team": ""}, "team"),
    ],
)
def test_bad_channels_are_refused_on_their_field(data, field, users, client):
    before = counts()
    response = login(client, users, Role.MANAGER).post(reverse("channels"), data)
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in html(response)
    assert HOSTILE not in html(response)
    assert counts() == before


# --- CSV import --------------------------------------------------------------------------


def csv_file(*rows: str, name: str = "touches.csv", header: str = CSV_HEADER) -> Any:
    return SimpleUploadedFile(name, (header + "".join(f"{r}\n" for r in rows)).encode())


def upload(client: Client, file: Any) -> Any:
    return client.post(reverse("touch-import"), {"file": file})


def start(client: Client, job: ImportJob, mode: str, capture: Any) -> Any:
    with capture(execute=True):
        response = client.post(reverse("touch-import-start", args=[job.pk]), {"mode": mode})
    return response


def test_upload_preview_import_and_report(users, client, ada, django_capture_on_commit_callbacks):
    login(client, users, Role.MARKETER)
    response = upload(
        client,
        csv_file(
            f"ada@example.com,webinar,,webinar_attended,{WHEN},",
            f"new@example.com,web,,visit,{WHEN},",
            f"broken,web,,visit,{WHEN},",
        ),
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("touch-import-job", args=[job.pk])
    preview = html(client.get(response["Location"]))
    assert "3 rows: 2 ready to import" in preview
    assert "1 with errors" in preview
    assert "new@example.com" in preview
    assert "email: Enter a valid email address." in preview
    assert Touch.objects.count() == 0  # nothing before the choice

    done = start(client, job, "valid_rows", django_capture_on_commit_callbacks)
    assert done.status_code == 302
    page = html(client.get(done["Location"]))
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert '<dd id="job-created">2</dd>' in page
    assert '<dd id="job-rejected">1</dd>' in page
    assert "<td>Imported</td><td>2</td><td>2\u20133</td>" in page
    assert "<td>Not imported (errors)</td><td>1</td><td>4</td>" in page
    assert 'http-equiv="refresh"' not in page
    assert Touch.objects.count() == 2
    assert Contact.objects.filter(email_key="new@example.com").exists()
    errors = client.get(reverse("touch-import-errors", args=[job.pk]))
    assert errors["Content-Type"] == "text/csv; charset=utf-8"
    assert errors.content.decode().splitlines() == [
        "row,field,message",
        "4,email,Enter a valid email address.",
    ]


def test_all_or_nothing_with_a_bad_row_imports_nothing(
    users, client, django_capture_on_commit_callbacks
):
    login(client, users, Role.MARKETER)
    upload(client, csv_file(f"a@example.com,web,,visit,{WHEN},", f"b@example.com,web,,x,{WHEN},"))
    job = ImportJob.objects.get()
    page = html(
        client.get(
            start(client, job, "all_or_nothing", django_capture_on_commit_callbacks)["Location"]
        )
    )
    assert "nothing was imported" in page
    assert "<td>3</td><td>kind</td>" in page
    assert Touch.objects.count() == 0
    assert Contact.objects.count() == 0


def test_uploading_the_same_file_again_says_so_and_adds_nothing(
    users, client, django_capture_on_commit_callbacks
):
    login(client, users, Role.MARKETER)
    rows = (f"a@example.com,web,,visit,{WHEN},", f"b@example.com,web,,visit,{WHEN},")
    upload(client, csv_file(*rows))
    first = ImportJob.objects.get()
    start(client, first, "all_or_nothing", django_capture_on_commit_callbacks)
    upload(client, csv_file(*rows, name="again.csv"))
    second = ImportJob.objects.exclude(pk=first.pk).get()
    assert "was imported before" in html(client.get(reverse("touch-import-job", args=[second.pk])))
    page = html(
        client.get(
            start(client, second, "valid_rows", django_capture_on_commit_callbacks)["Location"]
        )
    )
    assert '<dd id="job-created">0</dd>' in page
    assert '<dd id="job-duplicates">2</dd>' in page
    assert Touch.objects.count() == 2


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "The submitted file is empty."),
        (b"\n\n", "The file is empty."),
        (
            "email,channel,kind,occurred_at\nzoë@x.test,web,visit,2026\n".encode("cp1252"),
            "not UTF-8",
        ),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\xff\xfe", "binary data"),
        (b"email,channel\nada@example.com,web\n", "Missing columns: kind, occurred_at"),
        (CSV_HEADER.encode(), "a header but no rows"),
        ((CSV_HEADER + 'a@b.test,web,,visit,"x"y,\n').encode(), "not valid CSV"),
    ],
)
def test_files_that_cannot_be_imported_are_refused_on_the_file_field(content, words, users, client):
    before = counts()
    response = upload(login(client, users, Role.MARKETER), SimpleUploadedFile("t.csv", content))
    assert response.status_code == 400
    page = html(response)
    assert 'id="id_file_error"' in page
    assert words in page
    assert counts() == before


def test_a_missing_file_and_an_oversized_one_are_refused(users, client, monkeypatch):
    login(client, users, Role.MARKETER)
    response = client.post(reverse("touch-import"), {})
    assert response.status_code == 400
    assert 'id="id_file_error"' in html(response)
    monkeypatch.setattr(touch_import_csv, "MAX_FILE_BYTES", 50)
    response = upload(client, csv_file(*[f"p{n}@example.com,web,,visit,{WHEN}," for n in range(3)]))
    assert response.status_code == 400
    assert "the limit is" in html(response)
    assert ImportJob.objects.count() == 0


def test_too_many_rows_are_refused(users, client, monkeypatch):
    monkeypatch.setattr(touch_import_csv, "MAX_ROWS", 2)
    login(client, users, Role.MARKETER)
    response = upload(client, csv_file(*[f"p{n}@example.com,web,,visit,{WHEN}," for n in range(3)]))
    assert response.status_code == 400
    assert "more than 2 rows" in html(response)


def test_hostile_cells_and_file_names_are_refused_or_shown_as_text(
    users, client, django_capture_on_commit_callbacks
):
    login(client, users, Role.MARKETER)
    upload(
        client,
        csv_file(
            f"a@example.com,web,,visit,{WHEN},=cmd|' /C calc'!A0",
            f'"{HOSTILE}@x.test",web,,visit,{WHEN},',
            f"b@example.com,web,,visit,{WHEN},@SUM(1+1)",
            name=f"{HOSTILE}.csv",
        ),
    )
    job = ImportJob.objects.get()
    page = html(client.get(reverse("touch-import-job", args=[job.pk])))
    assert HOSTILE not in page
    assert HOSTILE_ESCAPED in page
    assert page.count("a spreadsheet runs as a formula") == 4  # the rows, and the error list
    page = html(
        client.get(start(client, job, "valid_rows", django_capture_on_commit_callbacks)["Location"])
    )
    assert '<dd id="job-created">0</dd>' in page
    assert Touch.objects.count() == 0
    errors = client.get(reverse("touch-import-errors", args=[job.pk])).content.decode()
    assert "=cmd" not in errors


def test_another_marketer_cannot_see_an_import_and_a_manager_cannot_start_it(users, client):
    login(client, users, Role.MARKETER)
    upload(client, csv_file(f"a@example.com,web,,visit,{WHEN},"))
    job = ImportJob.objects.get()
    other = Client()
    other.force_login(UserFactory(username="other-marketer", role=Role.MARKETER))  # type: ignore[arg-type]
    for name in ("touch-import-job", "touch-import-errors"):
        assert other.get(reverse(name, args=[job.pk])).status_code == 404
    assert (
        other.post(reverse("touch-import-start", args=[job.pk]), {"mode": "valid_rows"}).status_code
        == 404
    )
    assert "touches.csv" not in html(other.get(reverse("touch-import")))
    for role in (Role.SALES_REP, Role.PRIVACY_OFFICER, Role.INTEGRATION):
        outsider = login(Client(), users, role)
        for name in ("touch-import-job", "touch-import-errors"):
            assert outsider.get(reverse(name, args=[job.pk])).status_code == 403
        start_url = reverse("touch-import-start", args=[job.pk])
        assert outsider.post(start_url, {"mode": "valid_rows"}).status_code == 403
    manager = login(Client(), users, Role.MANAGER)
    page = html(manager.get(reverse("touch-import-job", args=[job.pk])))
    assert "can start its import" in page
    start_url = reverse("touch-import-start", args=[job.pk])
    assert manager.post(start_url, {"mode": "valid_rows"}).status_code == 403
    assert client.get(reverse("touch-import-job", args=[job.pk + 100])).status_code == 404
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED


def test_starting_needs_a_mode_and_happens_once(users, client, django_capture_on_commit_callbacks):
    login(client, users, Role.MARKETER)
    upload(client, csv_file(f"a@example.com,web,,visit,{WHEN},"))
    job = ImportJob.objects.get()
    url = reverse("touch-import-start", args=[job.pk])
    for data in ({}, {"mode": "some"}, {"mode": HOSTILE}):
        response = client.post(url, data)
        assert response.status_code == 400
        assert 'id="id_mode_error"' in html(response)
    assert client.get(url).status_code == 405
    start(client, job, "valid_rows", django_capture_on_commit_callbacks)
    again = start(client, job, "valid_rows", django_capture_on_commit_callbacks)
    assert again.status_code == 409
    assert "already been started" in html(again)
    assert Touch.objects.count() == 1


def test_a_running_import_shows_its_progress_and_reloads(users, client):
    login(client, users, Role.MARKETER)
    upload(client, csv_file(*[f"p{n}@example.com,web,,visit,{WHEN}," for n in range(4)]))
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.RUNNING, mode="valid_rows", processed=2
    )
    page = html(client.get(reverse("touch-import-job", args=[job.pk])))
    assert '<meta http-equiv="refresh" content="2">' in page
    assert '<progress id="job-progress" value="2" max="4">' in page
    assert "Running" in page


def test_the_upload_page_lists_recent_imports(users, client):
    login(client, users, Role.MARKETER)
    upload(client, csv_file(f"a@example.com,web,,visit,{WHEN},", name="spring.csv"))
    page = html(client.get(reverse("touch-import")))
    assert "spring.csv" in page
    assert "Uploaded, waiting for a choice" in page


def test_a_time_in_the_future_is_a_row_error(users, client):
    later = (timezone.now() + timedelta(days=1)).isoformat()
    login(client, users, Role.MARKETER)
    upload(client, csv_file(f"a@example.com,web,,visit,{later},"))
    page = html(client.get(reverse("touch-import-job", args=[ImportJob.objects.get().pk])))
    assert "occurred_at: This time is in the future." in page
