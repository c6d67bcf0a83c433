"""channels/, campaigns/ and touches/ as docs/api.md states them: roles, the ledger, bad input."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from contacts.models import Campaign, Channel, Contact, Team, Touch
from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import contact_make

pytestmark = pytest.mark.django_db

DEFAULT_CHANNELS = {
    Team.MARKETING: {
        "web",
        "email",
        "paid_search",
        "paid_social",
        "organic_social",
        "event",
        "webinar",
        "content",
    },
    Team.PARTNER: {"partner", "referral"},
    Team.SALES: {"sales_call", "sales_meeting", "sales_email"},
}


def stored() -> tuple[int, ...]:
    return (
        Channel.objects.count(),
        Campaign.objects.count(),
        Touch.objects.count(),
        Contact.objects.count(),
        LedgerEntry.objects.count(),
    )


def attrs(response: Any) -> set[str]:
    return {error["attr"] for error in response.json()["errors"]}


@pytest.fixture
def client_as(users, api_client_for):
    return lambda role: api_client_for(users[role])


# --- channels ------------------------------------------------------------------------


def test_the_default_channels_are_seeded_with_their_teams(client_as):
    response = client_as(Role.MARKETER).get("/api/v1/channels/")
    assert response.status_code == 200
    by_team: dict[str, set[str]] = {}
    for channel in response.json():
        by_team.setdefault(channel["team"], set()).add(channel["key"])
    assert by_team == DEFAULT_CHANNELS


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.MANAGER, 201),
        (Role.MARKETER, 403),
        (Role.SALES_REP, 403),
        (Role.PRIVACY_OFFICER, 403),
        (Role.INTEGRATION, 403),
    ],
)
def test_only_managers_add_channels(client_as, role, expected):
    before = stored()
    response = client_as(role).post("/api/v1/channels/", {"key": "podcast", "team": "marketing"})
    assert response.status_code == expected
    if expected == 201:
        assert Channel.objects.get(key="podcast").team == Team.MARKETING
        assert LedgerEntry.objects.filter(action__startswith="channel.").exists()
    else:
        assert stored() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"team": "marketing"}, "key"),
        ({"key": "podcast"}, "team"),
        ({"key": "podcast", "team": "finance"}, "team"),
        ({"key": "Pod cast!", "team": "marketing"}, "key"),
        ({"key": "p" * 500, "team": "marketing"}, "key"),
        ({"key": "<script>", "team": "marketing"}, "key"),
    ],
)
def test_bad_channels_are_400s_naming_the_field(client_as, body, field):
    before = stored()
    response = client_as(Role.MANAGER).post("/api/v1/channels/", body, format="json")
    assert response.status_code == 400
    assert field in attrs(response)
    assert stored() == before


def test_a_duplicate_channel_is_refused_and_nothing_changes(client_as):
    before = stored()
    response = client_as(Role.MANAGER).post("/api/v1/channels/", {"key": "web", "team": "sales"})
    assert 400 <= response.status_code < 500
    assert Channel.objects.get(key="web").team == Team.MARKETING
    assert stored() == before


def test_anonymous_callers_get_401(client):
    assert client.get("/api/v1/channels/").status_code == 401
    assert client.post("/api/v1/touches/", {}).status_code == 401


# --- campaigns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.MARKETER, 201),
        (Role.MANAGER, 201),
        (Role.SALES_REP, 403),
        (Role.PRIVACY_OFFICER, 403),
        (Role.INTEGRATION, 403),
    ],
)
def test_who_may_create_campaigns(client_as, role, expected):
    response = client_as(role).post(
        "/api/v1/campaigns/",
        {"name": "Spring webinar", "channel": "webinar", "utm_source": "li", "cost": "1200.50"},
    )
    assert response.status_code == expected
    if expected == 201:
        body = response.json()
        assert body["channel"] == "webinar" and body["team"] == "marketing"
        assert body["cost"] == "1200.50"
        assert ledger_verify().ok


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "webinar"}, "name"),
        ({"name": "X"}, "channel"),
        ({"name": "X", "channel": "carrier_pigeon"}, "channel"),
        ({"name": "X", "channel": "webinar", "cost": "-1"}, "cost"),
        ({"name": "X", "channel": "webinar", "cost": "lots"}, "cost"),
        ({"name": "X", "channel": "webinar", "cost": "1e400"}, "cost"),
        ({"name": "X", "channel": "webinar", "cost": "10", "currency": "JPY"}, "currency"),
        ({"name": "X" * 1000, "channel": "webinar"}, "name"),
        ({"name": "X", "channel": "webinar", "utm_source": "u" * 1000}, "utm_source"),
    ],
)
def test_bad_campaigns_are_400s_naming_the_field(client_as, body, field):
    before = stored()
    response = client_as(Role.MARKETER).post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400
    assert field in attrs(response)
    assert stored() == before


def test_hostile_campaign_names_are_stored_as_text(client_as):
    name = "<img src=x onerror=alert(1)>'; DROP TABLE touches;--"
    response = client_as(Role.MARKETER).post(
        "/api/v1/campaigns/", {"name": name, "channel": "content"}
    )
    assert response.status_code == 201
    assert Campaign.objects.get().name == name
    listed = client_as(Role.SALES_REP).get("/api/v1/campaigns/").json()
    assert [row["name"] for row in listed["results"]] == [name]


# --- touches -----------------------------------------------------------------------


def test_a_touch_by_email_creates_the_person_and_is_on_the_ledger(client_as):
    when = (timezone.now() - timedelta(days=3)).isoformat()
    response = client_as(Role.MARKETER).post(
        "/api/v1/touches/",
        {
            "contact_email": "Ada@Engine.example",
            "channel": "webinar",
            "kind": "webinar_attended",
            "occurred_at": when,
        },
    )
    assert response.status_code == 201
    touch = Touch.objects.get()
    assert touch.contact.email_key == "ada@engine.example"
    assert touch.kind == "webinar_attended"
    actions = set(LedgerEntry.objects.values_list("action", flat=True))
    assert {"contact.create", "touch.record"} <= actions
    assert ledger_verify().ok


def test_a_repeated_external_id_answers_the_first_touch(client_as):
    contact = contact_make()
    body = {
        "contact": contact.pk,
        "channel": "email",
        "kind": "email_click",
        "source_system": "hubspot",
        "external_id": "e-1",
    }
    api = client_as(Role.INTEGRATION)
    first = api.post("/api/v1/touches/", body)
    before = stored()
    again = api.post("/api/v1/touches/", {**body, "channel": "web"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["channel"] == "email"
    assert stored() == before


def test_a_campaign_of_another_channel_is_refused(client_as):
    contact = contact_make()
    campaign = Campaign.objects.create(
        name="Search", channel=Channel.objects.get(key="paid_search"), created_at=timezone.now()
    )
    before = stored()
    response = client_as(Role.MARKETER).post(
        "/api/v1/touches/",
        {"contact": contact.pk, "channel": "webinar", "campaign": campaign.pk},
    )
    assert response.status_code == 400
    assert "campaign" in attrs(response)
    assert stored() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "web"}, "contact"),
        ({"contact_email": "a@b.example"}, "channel"),
        ({"contact_email": "not an email", "channel": "web"}, "contact_email"),
        ({"contact_email": "a@b.example", "channel": "telepathy"}, "channel"),
        ({"contact_email": "a@b.example", "channel": "web", "kind": "seance"}, "kind"),
        ({"contact_email": "a@b.example", "channel": "web", "campaign": 999999}, "campaign"),
        ({"contact": 999999, "channel": "web"}, "contact"),
        ({"contact": "abc", "channel": "web"}, "contact"),
        (
            {"contact_email": "a@b.example", "channel": "web", "occurred_at": "2026-10-01T09:00"},
            "occurred_at",
        ),
        (
            {"contact_email": "a@b.example", "channel": "web", "occurred_at": "yesterday"},
            "occurred_at",
        ),
        (
            {"contact_email": "a@b.example", "channel": "web", "external_id": "x"},
            "source_system",
        ),
        (
            {
                "contact_email": "a@b.example",
                "channel": "web",
                "source_system": "s",
                "external_id": "x" * 5000,
            },
            "external_id",
        ),
        ({"contact_email": "a" * 400 + "@b.example", "channel": "web"}, "contact_email"),
    ],
)
def test_bad_touches_are_400s_naming_the_field(client_as, body, field):
    before = stored()
    response = client_as(Role.MARKETER).post("/api/v1/touches/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in attrs(response)
    assert stored() == before


def test_a_touch_in_the_future_is_a_400(client_as):
    before = stored()
    later = (timezone.now() + timedelta(hours=2)).isoformat()
    response = client_as(Role.MARKETER).post(
        "/api/v1/touches/",
        {"contact_email": "a@b.example", "channel": "web", "occurred_at": later},
    )
    assert response.status_code == 400
    assert attrs(response) == {"occurred_at"}
    assert stored() == before


def test_a_touch_for_an_erased_person_is_refused(client_as, users):
    from contacts import services
    from leadrecord.ledger import Actor

    contact = contact_make()
    services.contact_erase(contact=contact, actor=Actor.of(users[Role.PRIVACY_OFFICER]))
    before = stored()
    response = client_as(Role.MARKETER).post(
        "/api/v1/touches/", {"contact": contact.pk, "channel": "web"}
    )
    assert 400 <= response.status_code < 500
    assert stored() == before


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.MARKETER, 201),
        (Role.SALES_REP, 201),
        (Role.MANAGER, 201),
        (Role.INTEGRATION, 201),
        (Role.PRIVACY_OFFICER, 403),
    ],
)
def test_who_may_record_touches(client_as, role, expected):
    response = client_as(role).post(
        "/api/v1/touches/", {"contact_email": "a@b.example", "channel": "web"}
    )
    assert response.status_code == expected


def test_touches_are_listed_newest_first_and_filtered(client_as):
    api = client_as(Role.MARKETER)
    now = timezone.now()
    for days, channel in ((5, "web"), (1, "email"), (3, "web")):
        api.post(
            "/api/v1/touches/",
            {
                "contact_email": "a@b.example",
                "channel": channel,
                "occurred_at": (now - timedelta(days=days)).isoformat(),
            },
        )
    listed = api.get("/api/v1/touches/").json()["results"]
    assert [row["channel"] for row in listed] == ["email", "web", "web"]
    web = api.get("/api/v1/touches/", {"channel": "web"}).json()["results"]
    assert len(web) == 2


# Found by the schema fuzzer: a decimal or a number past a bigint in an id filter
# reached the database and came back as a 500.
@pytest.mark.parametrize("value", ["-6.08e+48", "1.5", "99999999999999999999999", "0", "x"])
@pytest.mark.parametrize("name", ["contact", "campaign"])
def test_touch_filters_take_only_ids(client_as, name, value):
    response = client_as(Role.MANAGER).get("/api/v1/touches/", {name: value})
    assert response.status_code == 400
    assert attrs(response) == {name}
