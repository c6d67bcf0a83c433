"""Forms a marketer publishes and people send: the record they write, and what is refused."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from buyers.models import BuyerForm, FormSubmission, Visitor
from contacts.models import Consent, Contact, Touch
from handoff import services as handoff_services
from handoff.models import Handoff
from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import contact_make
from .conftest import SYSTEM, send

pytestmark = pytest.mark.django_db

PERSON = {
    "email": " Dana.Buyer@Acme.example ",
    "first_name": "Dana",
    "last_name": "Buyer",
    "organization": "Acme",
    "journey_stage": "comparing",
    "journey_stage__audience": "all",
    "budget": "DANA-BUDGET-50K",
    "budget__audience": "sales",
    "timeline": "this quarter",
    "consent_marketing_email": "on",
}
UTM_QUERY = (
    "?utm_source=google&utm_medium=cpc&utm_campaign=spring-2026&utm_term=crm&gclid=CLICK-123"
)


def _nothing_written(before_entries: int) -> None:
    assert not Contact.objects.exists()
    assert not FormSubmission.objects.exists()
    assert LedgerEntry.objects.count() == before_entries


# --- what a submission records --------------------------------------------------------


def test_a_hosted_form_with_utms_writes_the_person_consents_disclosures_and_touch(
    buyer_form, campaign
):
    client = Client()
    response = send(
        client, buyer_form.slug, PERSON, query=UTM_QUERY, HTTP_REFERER="https://news.example/a"
    )

    assert response.status_code == 200, response.content
    assert b"Thank you" in response.content
    dana = Contact.objects.get()
    assert (dana.email, dana.email_key) == ("Dana.Buyer@Acme.example", "dana.buyer@acme.example")
    assert dana.organization is not None and dana.organization.name == "Acme"
    consent = Consent.objects.get(contact=dana)
    assert (consent.purpose, consent.granted, consent.notice_version, consent.source) == (
        "marketing_email",
        True,
        "2026-03",
        "form:demo-request",
    )
    shared = {d.key: (d.value, d.audience, d.source, d.purpose) for d in dana.disclosures.all()}
    assert shared == {
        "journey_stage": ("comparing", "all", "form", "qualification"),
        "budget": ("DANA-BUDGET-50K", "sales", "form", "qualification"),
        # No choice made: the narrowest, the team that runs the form.
        "timeline": ("this quarter", "marketing", "form", "qualification"),
    }
    touch = Touch.objects.get(contact=dana)
    assert (touch.kind, touch.campaign, touch.channel.key) == ("form", campaign, "paid_search")
    submission = FormSubmission.objects.get()
    assert submission.touch == touch and submission.campaign == campaign
    assert submission.page_url.startswith("http://testserver/f/demo-request/?utm_source=google")
    assert submission.referrer == "https://news.example/a"
    assert submission.utm == {
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring-2026",
        "utm_term": "crm",
    }
    assert submission.click_ids == {"gclid": "CLICK-123"}
    assert (submission.shared_device, submission.created_person) == (False, True)
    entries = LedgerEntry.objects.filter(contact_id=dana.pk)
    assert {e.actor_kind for e in entries} == {"person"}
    assert "form.submit" in {e.action for e in entries}
    # Where the form came from is sealed in the ledger, never in plain.
    assert not LedgerEntry.objects.filter(after__icontains="CLICK-123").exists()
    assert ledger_verify().ok


def test_the_marketer_does_not_see_what_the_buyer_shared_with_sales_only(
    buyer_form, users, api_client_for
):
    send(Client(), buyer_form.slug, PERSON)
    dana = Contact.objects.get()

    as_marketer = api_client_for(users[Role.MARKETER]).get(f"/api/v1/contacts/{dana.pk}/")
    as_sales = api_client_for(users[Role.SALES_REP]).get(f"/api/v1/contacts/{dana.pk}/")

    assert as_marketer.status_code == as_sales.status_code == 200
    assert b"DANA-BUDGET-50K" not in as_marketer.content
    assert b"DANA-BUDGET-50K" in as_sales.content


def test_a_known_email_is_the_same_person_and_a_new_email_from_that_browser_is_a_new_one(
    buyer_form,
):
    existing = contact_make(email="dana.buyer@acme.example")
    client = Client()
    send(client, buyer_form.slug, {**PERSON, "consent_analytics": "on"})
    assert Contact.objects.count() == 1
    assert FormSubmission.objects.get().contact == existing
    assert "lr_vid" in client.cookies, "analytics consent gives the browser a visitor id"

    send(client, buyer_form.slug, {"email": "sam.other@acme.example"})

    other = Contact.objects.get(email_key="sam.other@acme.example")
    assert other != existing, "a browser cookie never decides who someone is"
    latest = FormSubmission.objects.get(contact=other)
    assert latest.shared_device and latest.created_person


def test_without_analytics_consent_no_visitor_id_is_set(buyer_form):
    client = Client()
    send(client, buyer_form.slug, PERSON)
    assert "lr_vid" not in client.cookies
    assert not Visitor.objects.exists()


def test_a_ready_to_talk_told_to_sales_alone_opens_a_handoff(buyer_form):
    ruleset = handoff_services.ruleset_create(
        name="r", points={"channel:web": 1}, mql_threshold=50, sla_hours=24, actor=SYSTEM
    )
    handoff_services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)

    send(
        Client(),
        buyer_form.slug,
        {
            "email": "ready@acme.example",
            "journey_stage": "ready_to_talk",
            "journey_stage__audience": "sales",
        },
    )

    handoff = Handoff.objects.get()
    assert handoff.contact.email_key == "ready@acme.example"
    assert handoff.say_so_audience == "sales"


def test_progressive_profiling_leaves_out_what_a_known_consenting_browser_told_us(buyer_form):
    client = Client()
    send(client, buyer_form.slug, {**PERSON, "consent_analytics": "on"})

    page = client.get(f"/f/{buyer_form.slug}/")

    assert b'name="budget"' not in page.content
    assert b'name="journey_stage"' not in page.content
    assert b'name="email"' in page.content
    stranger = Client().get(f"/f/{buyer_form.slug}/")
    assert b'name="budget"' in stranger.content


def test_a_staff_session_in_the_browser_is_not_used(buyer_form, users):
    client = Client()
    client.force_login(users[Role.MARKETER])

    send(client, buyer_form.slug, PERSON)

    dana = Contact.objects.get()
    actors = set(
        LedgerEntry.objects.filter(contact_id=dana.pk).values_list("actor_kind", "actor_id")
    )
    assert actors == {("person", None)}


def test_the_embed_may_be_framed_and_posts_back_into_the_frame(buyer_form):
    client = Client()
    page = client.get(f"/f/{buyer_form.slug}/embed/", HTTP_REFERER="https://www.acme.example/p")
    assert page.status_code == 200
    assert "X-Frame-Options" not in page.headers
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"]
    assert b"<h1>" not in page.content  # no page chrome inside the frame

    response = send(
        client, buyer_form.slug, PERSON, path="embed/", HTTP_REFERER="https://www.acme.example/p"
    )

    assert response.status_code == 200
    assert FormSubmission.objects.get().page_url == "https://www.acme.example/p"


def test_the_form_is_accessible_labels_for_every_field(buyer_form):
    page = Client().get(f"/f/{buyer_form.slug}/").content.decode()
    for name in ("email", "first_name", "budget", "consent_analytics"):
        assert f'<label for="id_{name}">' in page, name
    assert "<legend>Share “Budget” with</legend>" in page


# --- what is refused, and writes nothing ----------------------------------------------


def test_a_filled_honeypot_is_thanked_and_nothing_is_written(buyer_form):
    before = LedgerEntry.objects.count()
    response = send(Client(), buyer_form.slug, {**PERSON, "website": "http://spam.example"})
    assert response.status_code == 200
    _nothing_written(before)


def test_a_form_sent_too_fast_is_shown_again_and_nothing_is_written(buyer_form):
    before = LedgerEntry.objects.count()
    response = send(Client(), buyer_form.slug, PERSON, wait=0.2)
    assert response.status_code == 400
    assert b"send the form again" in response.content
    assert b'value="Dana"' in response.content, "what they typed is kept"
    _nothing_written(before)


@pytest.mark.parametrize("timing", ["", "forged", None])
def test_a_post_without_a_valid_timing_field_writes_nothing(buyer_form, timing):
    before = LedgerEntry.objects.count()
    body = dict(PERSON)
    if timing is not None:
        body["lr_t"] = timing
    response = Client().post(f"/f/{buyer_form.slug}/", body)
    assert response.status_code == 400
    _nothing_written(before)


def test_a_timing_field_of_another_form_does_not_count(buyer_form):
    from buyers import services

    services.buyer_form_create(slug="other", title="Other", actor=SYSTEM)
    client = Client()
    page = client.get("/f/other/")
    token = page.content.decode().split('name="lr_t" value="')[1].split('"')[0]
    response = client.post(f"/f/{buyer_form.slug}/", {**PERSON, "lr_t": token})
    assert response.status_code == 400
    assert not Contact.objects.exists()


@override_settings(BUYER_FORM_RATE_LIMIT="2/hour")
def test_too_many_posts_from_one_address_get_429_and_write_nothing(buyer_form):
    client = Client()
    for n in range(2):
        assert send(client, buyer_form.slug, {"email": f"p{n}@acme.example"}).status_code == 200
    response = send(client, buyer_form.slug, {"email": "third@acme.example"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert not Contact.objects.filter(email_key="third@acme.example").exists()
    other_address = send(
        Client(), buyer_form.slug, {"email": "fourth@acme.example"}, REMOTE_ADDR="10.1.2.3"
    )
    assert other_address.status_code == 200


@override_settings(BUYER_FORM_MAX_BYTES=2000)
def test_an_oversized_post_is_refused_whole(buyer_form):
    before = LedgerEntry.objects.count()
    response = send(Client(), buyer_form.slug, {**PERSON, "timeline": "x" * 3000})
    assert response.status_code == 413
    _nothing_written(before)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", ""),
        ("email", "not-an-email"),
        ("email", "a" * 250 + "@x.example"),
        ("first_name", "n" * 151),
        ("timeline", "t" * 2001),
        ("journey_stage", "buying_now"),
        ("budget__audience", "everyone"),
        ("utm_campaign", "u" * 201),
    ],
)
def test_wrong_input_names_the_field_and_writes_nothing(buyer_form, field, value):
    before = LedgerEntry.objects.count()
    response = send(Client(), buyer_form.slug, {**PERSON, field: value})
    assert response.status_code == 400
    page = response.content.decode()
    assert "field-error" in page or "Nothing was sent" in page
    _nothing_written(before)


def test_hostile_text_is_stored_as_text_and_shown_escaped(buyer_form, users):
    hostile = "<script>alert(1)</script>"
    send(Client(), buyer_form.slug, {**PERSON, "first_name": hostile, "timeline": hostile})
    dana = Contact.objects.get()
    assert dana.first_name == hostile
    staff = Client()
    staff.force_login(users[Role.MARKETER])
    page = staff.get(f"/forms/{buyer_form.pk}/")
    assert hostile.encode() not in page.content


def test_an_erased_persons_email_starts_afresh_as_a_new_person(buyer_form):
    from contacts.services import contact_erase

    send(Client(), buyer_form.slug, PERSON)
    contact_erase(contact=Contact.objects.get(), actor=SYSTEM)
    send(Client(), buyer_form.slug, PERSON)
    assert Contact.objects.filter(email_key="dana.buyer@acme.example").count() == 1
    assert Contact.objects.count() == 2


def test_an_unpublished_or_unknown_form_is_not_found(buyer_form):
    from buyers import services

    services.buyer_form_publish(form=buyer_form, published=False, actor=SYSTEM)
    assert Client().get(f"/f/{buyer_form.slug}/").status_code == 404
    assert Client().post(f"/f/{buyer_form.slug}/", PERSON).status_code == 404
    assert Client().get("/f/no-such-form/").status_code == 404


def test_erasure_empties_where_the_form_came_from(buyer_form):
    from contacts.services import contact_erase

    client = Client()
    send(client, buyer_form.slug, {**PERSON, "consent_analytics": "on"}, query=UTM_QUERY)
    contact_erase(contact=Contact.objects.get(), actor=SYSTEM)
    submission = FormSubmission.objects.get()
    assert (submission.page_url, submission.referrer, submission.utm, submission.click_ids) == (
        "",
        "",
        {},
        {},
    )
    assert not Visitor.objects.exists()


# --- the marketer's side --------------------------------------------------------------


def test_marketers_and_managers_create_forms_in_the_api(users, api_client_for, campaign):
    body = {
        "slug": "webinar-signup",
        "title": "Join the webinar",
        "consents": [{"purpose": "analytics", "notice": "Remember me", "version": "1"}],
        "disclosures": [{"key": "budget", "label": "Budget"}],
        "campaign": campaign.pk,
    }
    created = api_client_for(users[Role.MARKETER]).post("/api/v1/forms/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["slug"] == "webinar-signup"
    assert LedgerEntry.objects.filter(action="form.create").count() == 1
    for role in (Role.SALES_REP, Role.PRIVACY_OFFICER, Role.INTEGRATION):
        refused = api_client_for(users[role]).post(
            "/api/v1/forms/", {**body, "slug": f"x-{role}"}, format="json"
        )
        assert refused.status_code == 403, role
    again = api_client_for(users[Role.MANAGER]).post("/api/v1/forms/", body, format="json")
    assert again.status_code == 400
    assert again.json()["errors"][0]["attr"] == "slug"


@pytest.mark.parametrize(
    ("change", "attr"),
    [
        ({"consents": [{"purpose": "telepathy", "notice": "n", "version": "1"}]}, "consents"),
        ({"consents": [{"purpose": "analytics", "notice": "", "version": "1"}]}, "consents"),
        ({"consents": [{"purpose": "analytics", "notice": "n"}]}, "consents"),
        (
            {
                "consents": [
                    {"purpose": "analytics", "notice": "n", "version": "1"},
                    {"purpose": "analytics", "notice": "m", "version": "2"},
                ]
            },
            "consents",
        ),
        ({"disclosures": [{"key": "Not A Key"}]}, "disclosures"),
        ({"disclosures": [{"key": "budget"}, {"key": "budget"}]}, "disclosures"),
        ({"disclosures": [{"key": f"k{n}"} for n in range(21)]}, "disclosures"),
        ({"title": "t" * 201}, "title"),
        ({"slug": "Bad Slug"}, "slug"),
        ({"purpose": "mind_reading"}, "purpose"),
    ],
)
def test_a_wrong_form_is_refused_naming_the_field(users, api_client_for, change, attr):
    body = {"slug": "ok-slug", "title": "Fine", **change}
    response = api_client_for(users[Role.MARKETER]).post("/api/v1/forms/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["attr"].split(".")[0] == attr
    assert not BuyerForm.objects.exists()


def test_the_marketers_page_creates_a_form_and_shows_its_snippet_and_submissions(
    users, buyer_form, campaign
):
    send(Client(), buyer_form.slug, PERSON, query=UTM_QUERY)
    staff = Client()
    staff.force_login(users[Role.MARKETER])
    created = staff.post(
        "/forms/",
        {
            "slug": "page-made",
            "title": "Made on the page",
            "purpose": "qualification",
            "consents": "[]",
            "disclosures": '[{"key": "budget"}]',
        },
    )
    assert created.status_code == 302
    assert BuyerForm.objects.filter(slug="page-made").exists()
    bad = staff.post(
        "/forms/",
        {
            "slug": "x",
            "title": "x",
            "purpose": "qualification",
            "consents": "{not json",
            "disclosures": "[]",
        },
    )
    assert bad.status_code == 400 and b"Not valid JSON" in bad.content

    detail = staff.get(f"/forms/{buyer_form.pk}/").content.decode()
    assert "&lt;iframe src=&quot;http://testserver/f/demo-request/embed/&quot;" in detail
    assert (
        "&lt;form method=&quot;post&quot; action=&quot;http://testserver/f/demo-request/" in detail
    )
    assert "Spring search" in detail
    sales = Client()
    sales.force_login(users[Role.SALES_REP])
    assert sales.get("/forms/").status_code == 403
    assert sales.get(f"/forms/{buyer_form.pk}/").status_code == 403


def test_the_contact_page_tells_the_buyers_doings_within_each_roles_audience(buyer_form, users):
    send(Client(), buyer_form.slug, PERSON)
    dana = Contact.objects.get()
    for role in (Role.MARKETER, Role.SALES_REP):
        staff = Client()
        staff.force_login(users[role])
        page = staff.get(f"/contacts/{dana.pk}/").content.decode()
        assert "Sent the form demo-request" in page, role
        assert f"contact #{dana.pk} via form demo-request" in page, role
        assert ("DANA-BUDGET-50K" in page) == (role == Role.SALES_REP), role


def test_the_navigation_leads_marketers_to_forms_and_the_privacy_officer_to_requests(users):
    for role, label, shown in (
        (Role.MARKETER, b">Forms<", True),
        (Role.MANAGER, b">Forms<", True),
        (Role.SALES_REP, b">Forms<", False),
        (Role.PRIVACY_OFFICER, b">Erasure requests<", True),
        (Role.PRIVACY_OFFICER, b">Erasure requests from people's portals<", True),
        (Role.MANAGER, b">Erasure requests<", False),
    ):
        staff = Client()
        staff.force_login(users[role])
        assert (label in staff.get("/").content) == shown, (role, label)
