"""What people read: names and labels rather than ids and keys, times in the reporting zone
without seconds, and lists in the order they say."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client, override_settings
from django.urls import reverse

from contacts.models import Channel
from contacts.services import campaign_create, contact_merge, touch_record
from leadrecord.dates import duration_text, moment_text
from leadrecord.ledger import Actor
from leadrecord.roles import Role

from ..factories import contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
NOW = datetime(2026, 12, 5, 14, 33, 12, 666139, tzinfo=UTC)


def _page(users, role: str, url: str) -> str:
    client = Client()
    client.force_login(users[role])
    return client.get(url).content.decode()


@time_machine.travel(NOW, tick=False)
def test_the_timeline_is_in_the_order_things_happened_with_late_recordings_marked(users):
    ada = contact_make(email="ada@acme.example", first_name="Ada")
    webinar = Channel.objects.get(key="webinar")
    campaign = campaign_create(
        name="Spring webinar", channel=webinar, cost=Decimal("400.00"), actor=SYSTEM
    )
    # Recorded now, but it happened ten days ago: it goes before the contact's creation.
    touch_record(
        contact=ada,
        channel=webinar,
        campaign=campaign,
        kind="webinar_attended",
        occurred_at=NOW - timedelta(days=10),
        actor=SYSTEM,
    )
    touch_record(contact=ada, channel=Channel.objects.get(key="sales_call"), actor=SYSTEM)
    page = _page(users, Role.MARKETER, reverse("contact", args=[ada.pk]))
    timeline = page[page.index('id="timeline"') :]
    touch = timeline.index("Touch: Webinar attended via Webinar")
    created = timeline.index("Contact created")
    call = timeline.index("Touch: Other via Sales call")
    assert touch < created < call
    assert "campaign “Spring webinar”" in timeline
    assert f"campaign #{campaign.pk}" not in timeline and "sales_call" not in timeline
    # The back-dated touch shows when it was recorded too; the others do not need it.
    assert timeline.count("recorded 2026-12-05 14:33 UTC") == 1
    assert "2026-11-25 14:33 UTC" in timeline
    shown = re.sub(r"<[^>]+>", " ", page)  # what is read, not the machine-readable attributes
    assert ".666139" not in shown and "14:33:12" not in shown


@time_machine.travel(NOW, tick=False)
def test_entries_of_the_same_moment_keep_the_order_they_were_recorded(users):
    ada = contact_make(email="ada@acme.example", first_name="Ada")
    web = Channel.objects.get(key="web")
    moment = NOW - timedelta(days=1)
    for kind in ("visit", "download", "form"):
        touch_record(contact=ada, channel=web, kind=kind, occurred_at=moment, actor=SYSTEM)
    page = _page(users, Role.MARKETER, reverse("contact", args=[ada.pk]))
    found = re.findall(r"Touch: (Website visit|Content downloaded|Form submitted)", page)
    assert found == ["Website visit", "Content downloaded", "Form submitted"]


@time_machine.travel(NOW, tick=False)
def test_latest_touches_are_the_latest_by_when_they_happened(users):
    ada = contact_make(email="ada@acme.example", first_name="Ada")
    bob = contact_make(email="bob@acme.example", first_name="Bob")
    web = Channel.objects.get(key="web")
    touch_record(contact=ada, channel=web, occurred_at=NOW - timedelta(hours=1), actor=SYSTEM)
    # Recorded after Ada's, but it happened a month ago.
    touch_record(contact=bob, channel=web, occurred_at=NOW - timedelta(days=30), actor=SYSTEM)
    page = _page(users, Role.MARKETER, reverse("touches"))
    latest = page[page.index('id="latest-heading"') :]
    assert latest.index("Ada") < latest.index("Bob")
    assert "Website" in latest and ">web<" not in latest


def test_a_merged_record_is_told_in_words(users):
    ada = contact_make(email="ada@acme.example", first_name="Ada")
    duplicate = contact_make(email="ada.l@acme.example", first_name="Ada")
    contact_merge(keep=ada, merge=duplicate, actor=SYSTEM)
    page = _page(users, Role.MARKETER, reverse("contact", args=[ada.pk]))
    assert "Another record of this person was merged into this one" in page
    assert f"contact #{duplicate.pk}" not in page.lower()


@override_settings(TIME_ZONE="Europe/Berlin")
def test_times_are_read_in_the_reporting_zone_to_the_minute():
    assert moment_text(NOW) == "2026-12-05 15:33 CET"


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(seconds=20), "less than a minute"),
        (timedelta(minutes=45), "45 minutes"),
        (timedelta(hours=1, minutes=1), "1 hour 1 minute"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=2, hours=3, minutes=59), "2 days 3 hours"),
        (timedelta(seconds=-5), "less than a minute"),
    ],
)
def test_spans_are_said_in_the_largest_units_that_matter(span, text):
    assert duration_text(span) == text
