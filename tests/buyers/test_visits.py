"""Visits, with consent first: counts without it, visits kept with it, touches on a form."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client, override_settings
from django.utils import timezone

from buyers import portal
from buyers.models import DailyVisitCount, Visit, Visitor
from contacts.models import Contact, Touch

from .conftest import send

pytestmark = pytest.mark.django_db

PAGE = "https://www.acme.example/pricing?utm_source=news&utm_campaign=spring-2026&gclid=G-1"


def test_the_script_is_served_and_posts_to_where_it_came_from():
    response = Client().get("/c.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert b'base + "/c/"' in response.content and b"sendBeacon" in response.content


def test_without_consent_only_a_daily_count_is_kept_and_no_cookie_is_set(buyer_form):
    client = Client()
    for _ in range(3):
        assert client.post("/c/", {"u": PAGE, "r": "https://news.example/"}).status_code == 204
    pixel = client.get("/c.gif", HTTP_REFERER="https://www.acme.example/about")
    assert pixel.status_code == 200 and pixel["Content-Type"] == "image/gif"

    assert not client.cookies, "no identifier is handed out"
    assert not Visit.objects.exists() and not Visitor.objects.exists()
    counts = {(c.path, c.utm_campaign): c.views for c in DailyVisitCount.objects.all()}
    assert counts == {("/pricing", "spring-2026"): 3, ("/about", ""): 1}


def test_visits_after_consent_become_touches_when_a_form_is_sent(buyer_form, campaign):
    browser = Client()
    send(browser, buyer_form.slug, {"email": "vera@acme.example", "consent_analytics": "on"})
    vera = Contact.objects.get()
    start = timezone.now()
    with time_machine.travel(start - timedelta(days=3), tick=False):
        browser.post("/c/", {"u": "https://www.acme.example/?utm_campaign=spring-2026"})
    with time_machine.travel(start - timedelta(days=1), tick=False):
        browser.post("/c/", {"u": "https://www.acme.example/blog?utm_campaign=autumn"})
    assert Visit.objects.count() == 2
    assert not DailyVisitCount.objects.exists()

    send(browser, buyer_form.slug, {"email": "vera@acme.example"})

    visits = list(Touch.objects.filter(contact=vera, kind="visit").order_by("occurred_at"))
    assert [t.occurred_at.date() for t in visits] == [
        (start - timedelta(days=3)).date(),
        (start - timedelta(days=1)).date(),
    ]
    # The first campaign and the last both stay: one named a campaign, one did not.
    assert [t.campaign for t in visits] == [campaign, None]
    assert [t.channel.key for t in visits] == ["paid_search", "web"]
    assert not Visit.objects.exists()
    assert Touch.objects.filter(contact=vera, kind="form").count() == 2


def test_a_shared_browser_does_not_give_one_persons_visits_to_another(buyer_form):
    browser = Client()
    send(browser, buyer_form.slug, {"email": "first@acme.example", "consent_analytics": "on"})
    browser.post("/c/", {"u": "https://www.acme.example/"})

    send(browser, buyer_form.slug, {"email": "second@acme.example"})

    second = Contact.objects.get(email_key="second@acme.example")
    assert not Touch.objects.filter(contact=second, kind="visit").exists()
    assert Visit.objects.count() == 1, "still the first person's, for their next form"


def test_withdrawing_analytics_drops_the_visitor_id_and_its_visits(buyer_form):
    browser = Client()
    send(browser, buyer_form.slug, {"email": "wes@acme.example", "consent_analytics": "on"})
    browser.post("/c/", {"u": "https://www.acme.example/"})
    wes = Contact.objects.get()

    portal.portal_consent_set(contact=wes, purpose="analytics", granted=False)

    assert not Visitor.objects.exists() and not Visit.objects.exists()
    browser.post("/c/", {"u": "https://www.acme.example/"})
    assert not Visit.objects.exists()
    assert DailyVisitCount.objects.get().views == 1


@pytest.mark.parametrize(
    "body", [{}, {"u": ""}, {"u": "javascript:alert(1)"}, {"u": "not a url"}, {"u": "/relative"}]
)
def test_a_wrong_page_address_is_refused(body):
    assert Client().post("/c/", body).status_code == 400
    assert not DailyVisitCount.objects.exists()


@override_settings(VISIT_RATE_LIMIT="2/hour")
def test_too_many_views_from_one_address_are_refused():
    client = Client()
    statuses = [client.post("/c/", {"u": PAGE}).status_code for _ in range(3)]
    assert statuses == [204, 204, 429]
    assert DailyVisitCount.objects.get().views == 2
    # The pixel is always an image, but counts nothing over the limit.
    assert client.get("/c.gif", {"u": PAGE}).status_code == 200
    assert DailyVisitCount.objects.get().views == 2


@override_settings(BUYER_FORM_MAX_BYTES=500)
def test_an_oversized_view_is_refused():
    response = Client().post("/c/", {"u": PAGE + "&x=" + "y" * 1000})
    assert response.status_code == 413
    assert not DailyVisitCount.objects.exists()


def test_a_long_page_address_is_cut_not_refused(buyer_form):
    response = Client().post("/c/", {"u": "https://www.acme.example/" + "p" * 3000})
    assert response.status_code == 204
    assert len(DailyVisitCount.objects.get().path) == 500


def test_visits_kept_before_a_withdrawal_by_staff_do_not_become_touches(buyer_form):
    from contacts.services import consent_record

    from .conftest import SYSTEM

    browser = Client()
    send(browser, buyer_form.slug, {"email": "ann@acme.example", "consent_analytics": "on"})
    browser.post("/c/", {"u": "https://www.acme.example/"})
    ann = Contact.objects.get()
    consent_record(contact=ann, purpose="analytics", granted=False, source="call", actor=SYSTEM)
    browser.post("/c/", {"u": "https://www.acme.example/later"})
    assert Visit.objects.count() == 1, "no visit kept after the withdrawal"

    send(browser, buyer_form.slug, {"email": "ann@acme.example"})

    assert not Touch.objects.filter(contact=ann, kind="visit").exists()
    assert not Visit.objects.exists()
