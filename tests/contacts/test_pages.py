"""The contact pages: who may open them, what each form does with good and bad input,
and that no page shows a disclosure outside the user's audience."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from contacts import services
from contacts.models import Consent, Contact, Disclosure, Organization
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

PAGE_ROLES = {Role.MARKETER, Role.SALES_REP, Role.MANAGER, Role.PRIVACY_OFFICER}
WRITERS = {Role.MARKETER, Role.SALES_REP, Role.MANAGER}
PRIVACY = {Role.PRIVACY_OFFICER}

MARKETING_VALUE = "marketing-only-budget-41k"
SALES_VALUE = "sales-only-budget-97k"
EVERYONE_VALUE = "shared-with-all-team-of-12"


def make_contact(email: str = "ada@example.com", **kwargs: Any) -> Contact:
    kwargs.setdefault("first_name", "Ada")
    kwargs.setdefault("last_name", "Lovelace")
    contact, _ = services.contact_create(email=email, actor=SYSTEM, **kwargs)
    return contact


def disclose(contact: Contact, **kwargs: Any) -> Disclosure:
    fields: dict[str, Any] = {
        "key": "budget",
        "value": EVERYONE_VALUE,
        "audience": "all",
        "purpose": "qualification",
        "source": "form",
    }
    fields.update(kwargs)
    return services.disclosure_record(contact=contact, actor=SYSTEM, **fields)


def counts() -> tuple[int, ...]:
    """Every table a contact page may write, and the ledger."""
    return (
        Contact.objects.count(),
        Organization.objects.count(),
        Consent.objects.count(),
        Disclosure.objects.count(),
        LedgerEntry.objects.count(),
    )


def html(response: Any) -> str:
    return response.content.decode()


def login(client: Client, users: dict[str, Any], role: str) -> Client:
    client.force_login(users[role])
    return client


@pytest.fixture
def person() -> Contact:
    return make_contact(
        email="Ada@Example.com",
        title="Analyst",
        organization=services.OrganizationInput(name="Analytical Engines", domain="engines.test"),
    )


@pytest.fixture
def audiences(person: Contact) -> dict[str, Disclosure]:
    """One disclosure per audience, with values that say whose they are."""
    return {
        "marketing": disclose(person, audience="marketing", value=MARKETING_VALUE),
        "sales": disclose(person, audience="sales", value=SALES_VALUE, key="pain_point"),
        "all": disclose(person, audience="all", value=EVERYONE_VALUE, key="team_size"),
    }


# --- who may open which page -----------------------------------------------------------

# (url name, roles allowed, needs the contact or a disclosure as its argument)
PAGES = [
    ("contacts", PAGE_ROLES, None),
    ("contact", PAGE_ROLES, "contact"),
    ("contact-new", WRITERS, None),
    ("consent-new", WRITERS, "contact"),
    ("disclosure-new", WRITERS, "contact"),
    ("contact-merge", WRITERS, "contact"),
    ("disclosure-withdraw", WRITERS, "disclosure"),
    ("contact-erase", PRIVACY, "contact"),
    ("contact-export", PRIVACY, "contact"),
]


def page_url(name: str, argument: str | None, person: Contact, disclosure: Disclosure) -> str:
    if argument == "contact":
        return reverse(name, args=[person.pk])
    if argument == "disclosure":
        return reverse(name, args=[disclosure.pk])
    return reverse(name)


@pytest.mark.parametrize(("name", "allowed", "argument"), PAGES)
@pytest.mark.parametrize("role", Role.values)
def test_each_page_is_open_to_its_roles_only(name, allowed, argument, role, users, client, person):
    url = page_url(name, argument, person, disclose(person, audience="all"))
    response = login(client, users, role).get(url)
    assert response.status_code == (200 if role in allowed else 403)


@pytest.mark.parametrize(("name", "allowed", "argument"), PAGES)
def test_anonymous_visitors_are_sent_to_log_in(name, allowed, argument, client, person):
    url = page_url(name, argument, person, disclose(person))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(("name", "allowed", "argument"), PAGES)
def test_a_user_without_a_role_is_refused(name, allowed, argument, client, make_user, person):
    client.force_login(make_user())
    assert client.get(page_url(name, argument, person, disclose(person))).status_code == 403


def test_forbidden_posts_change_nothing(users, client, person, audiences):
    before = counts()
    officer = login(Client(), users, Role.PRIVACY_OFFICER)
    assert officer.post(reverse("contact-new"), {"email": "new@example.com"}).status_code == 403
    consent = {"purpose": "analytics", "granted": "granted", "source": "web"}
    assert officer.post(reverse("consent-new", args=[person.pk]), consent).status_code == 403
    assert (
        officer.post(reverse("disclosure-withdraw", args=[audiences["all"].pk])).status_code == 403
    )
    marketer = login(client, users, Role.MARKETER)
    erase = {"confirmation": person.email}
    assert marketer.post(reverse("contact-erase", args=[person.pk]), erase).status_code == 403
    assert marketer.post(reverse("contact-export", args=[person.pk])).status_code == 403
    assert counts() == before
    person.refresh_from_db()
    assert person.erased_at is None


@pytest.mark.parametrize("role", Role.values)
def test_the_contacts_link_is_in_the_navigation_of_page_roles(role, users, client):
    response = login(client, users, role).get(reverse("home"))
    link = f'<a href="{reverse("contacts")}"'
    assert (link in html(response)) == (role in PAGE_ROLES)


def test_unknown_contacts_are_not_found_and_erased_ones_show_their_tombstone(users, client, person):
    login(client, users, Role.MANAGER)
    missing = client.get(reverse("contact", args=[person.pk + 1000]))
    assert missing.status_code == 404 and "There is nothing at this address" in html(missing)
    services.contact_erase(contact=person, actor=SYSTEM)
    tombstone = client.get(reverse("contact", args=[person.pk]))
    assert tombstone.status_code == 410
    page = html(tombstone)
    assert f"Erased contact #{person.pk}" in page and "was erased on" in page
    assert "Ada" not in page and "ada@example.com" not in page
    assert f'href="{reverse("ledger")}"' in page  # the manager reads the record
    # Other pages of an erased contact are not there at all.
    assert client.get(reverse("consent-new", args=[person.pk])).status_code == 404


def test_the_erase_page_leads_to_the_tombstone_it_promises(users, client, person):
    login(client, users, Role.PRIVACY_OFFICER)
    promise = html(client.get(reverse("contact-erase", args=[person.pk])))
    assert f"Erased contact #{person.pk}" in promise
    services.contact_erase(contact=person, actor=SYSTEM)
    for role in (Role.PRIVACY_OFFICER, Role.MARKETER):
        response = login(Client(), users, role).get(reverse("contact", args=[person.pk]))
        assert response.status_code == 410 and f"Erased contact #{person.pk}" in html(response)


def test_a_merged_contact_leads_to_the_one_it_went_into(users, client, person):
    duplicate = make_contact(email="ada.lovelace@example.com")
    services.contact_merge(keep=person, merge=duplicate, actor=SYSTEM)
    response = login(client, users, Role.MARKETER).get(
        reverse("contact", args=[duplicate.pk]), follow=True
    )
    assert response.redirect_chain == [(reverse("contact", args=[person.pk]), 302)]
    assert "The contact you opened was merged into this one" in html(response)


def test_every_form_carries_a_csrf_token_and_posts_without_one_are_refused(users, person):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users[Role.MARKETER])
    for url in (
        reverse("contact-new"),
        reverse("consent-new", args=[person.pk]),
        reverse("disclosure-new", args=[person.pk]),
        reverse("contact-merge", args=[person.pk]),
    ):
        assert 'name="csrfmiddlewaretoken"' in html(client.get(url))
    before = counts()
    response = client.post(reverse("contact-new"), {"email": "csrf@example.com"})
    assert response.status_code == 403
    assert counts() == before


# --- the list -------------------------------------------------------------------------


def test_the_list_shows_each_contact_with_a_link(users, client, person):
    disclose(person, key="journey_stage", value="comparing", audience="all")
    response = login(client, users, Role.MARKETER).get(reverse("contacts"))
    assert response.status_code == 200
    page = html(response)
    for text in ("Ada Lovelace", "Ada@Example.com", "Analytical Engines", "Analyst", "Comparing"):
        assert f">{text}</" in page
    assert f'href="{reverse("contact", args=[person.pk])}"' in page
    assert "Add contact" in page


def test_the_privacy_officer_has_no_add_button(users, client, person):
    page = html(login(client, users, Role.PRIVACY_OFFICER).get(reverse("contacts")))
    assert "Ada Lovelace" in page
    assert reverse("contact-new") not in page


def test_the_list_filters_by_search_organization_stage_and_qualified(users, client, person):
    other = make_contact(email="charles@babbage.test", first_name="Charles", last_name="Babbage")
    disclose(other, key="journey_stage", value="ready_to_talk", audience="all")
    login(client, users, Role.MANAGER)

    def names(**query: str) -> set[str]:
        page = html(client.get(reverse("contacts"), query))
        return {name for name in ("Ada Lovelace", "Charles Babbage") if name in page}

    assert names() == {"Ada Lovelace", "Charles Babbage"}
    assert names(search="babbage") == {"Charles Babbage"}
    assert names(search="engines") == {"Ada Lovelace"}
    assert names(organization=str(person.organization_id)) == {"Ada Lovelace"}
    assert names(stage="ready_to_talk") == {"Charles Babbage"}
    assert names(qualified="true") == set()
    assert names(qualified="false") == {"Ada Lovelace", "Charles Babbage"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"organization": "not-a-number"}, "organization"),
        ({"organization": "999999"}, "organization"),
        ({"stage": "bored"}, "stage"),
        ({"search": "x" * 201}, "search"),
        ({"qualified": "maybe"}, "qualified"),
    ],
)
def test_bad_filters_are_shown_as_errors_and_list_nothing(query, field, users, client, person):
    response = login(client, users, Role.MARKETER).get(reverse("contacts"), query)
    assert response.status_code == 400
    page = html(response)
    assert f'id="id_{field}_error"' in page
    assert 'aria-invalid="true"' in page
    assert "Ada Lovelace" not in page


def test_the_list_pages_by_50_and_keeps_the_filters(users, client):
    for number in range(51):
        make_contact(email=f"page{number:02}@example.com", first_name=f"Paged{number:02}")
    make_contact(email="other@example.com", first_name="Unrelated")
    login(client, users, Role.MARKETER)
    first = client.get(reverse("contacts"), {"search": "paged"})
    assert html(first).count("Paged") == 50
    assert "Unrelated" not in html(first)
    assert 'href="?search=paged&amp;page=2"' in html(first)
    second = client.get(reverse("contacts"), {"search": "paged", "page": "2"})
    assert html(second).count("Paged") == 1
    assert "Page 2 of 2" in html(second)


def test_hostile_names_and_queries_are_escaped(users, client):
    make_contact(email="hostile@example.com", first_name=HOSTILE, title=HOSTILE)
    login(client, users, Role.MARKETER)
    page = html(client.get(reverse("contacts"), {"search": HOSTILE}))
    assert HOSTILE_ESCAPED in page
    assert "<script" not in page
    # An invalid value is quoted back in its error message: escaped too.
    response = client.get(reverse("contacts"), {"qualified": HOSTILE})
    assert response.status_code == 400
    assert HOSTILE_ESCAPED in html(response) and "<script" not in html(response)


# --- the detail page -------------------------------------------------------------------


def test_the_detail_page_shows_the_person_consents_disclosures_and_timeline(
    users, client, person, audiences
):
    services.consent_record(
        contact=person,
        purpose="marketing_email",
        granted=True,
        source="newsletter form",
        notice_version="v3",
        actor=SYSTEM,
    )
    response = login(client, users, Role.MARKETER).get(reverse("contact", args=[person.pk]))
    assert response.status_code == 200
    page = html(response)
    for text in ("Ada Lovelace", "Ada@Example.com", "Analyst", "Analytical Engines"):
        assert text in page
    assert "newsletter form" in page and "v3" in page
    assert reverse("consent-new", args=[person.pk]) in page
    assert reverse("disclosure-new", args=[person.pk]) in page
    assert reverse("disclosure-withdraw", args=[audiences["marketing"].pk]) in page
    assert reverse("contact-merge", args=[person.pk]) in page
    # Oldest first.
    assert page.index("Contact created") < page.index("Consent to marketing email granted")
    # The export and erasure are the privacy officer's.
    assert reverse("contact-export", args=[person.pk]) not in page
    assert reverse("contact-erase", args=[person.pk]) not in page


def test_the_privacy_officer_reads_and_has_export_and_erase_but_no_writes(
    users, client, person, audiences
):
    page = html(
        login(client, users, Role.PRIVACY_OFFICER).get(reverse("contact", args=[person.pk]))
    )
    assert reverse("contact-export", args=[person.pk]) in page
    assert reverse("contact-erase", args=[person.pk]) in page
    assert reverse("consent-new", args=[person.pk]) not in page
    assert reverse("disclosure-new", args=[person.pk]) not in page
    assert reverse("disclosure-withdraw", args=[audiences["all"].pk]) not in page
    assert reverse("contact-merge", args=[person.pk]) not in page


def test_the_timeline_pages_by_50_oldest_first(users, client, person):
    for number in range(55):
        services.consent_record(
            contact=person,
            purpose="analytics",
            granted=True,
            source=f"src{number:02}",
            actor=SYSTEM,
        )
    login(client, users, Role.MANAGER)
    first = html(client.get(reverse("contact", args=[person.pk])))
    assert "Contact created" in first
    assert "source: src48)" in first and "source: src49)" not in first
    assert 'href="?page=2#timeline"' in first
    second = html(client.get(reverse("contact", args=[person.pk]), {"page": "2"}))
    assert "Contact created" not in second
    assert "source: src49)" in second and "source: src54)" in second


# --- visibility: no page shows a disclosure outside the user's audience ---------------------


@pytest.mark.parametrize(
    ("role", "seen", "unseen"),
    [
        (Role.MARKETER, MARKETING_VALUE, SALES_VALUE),
        (Role.SALES_REP, SALES_VALUE, MARKETING_VALUE),
    ],
)
def test_a_disclosure_never_shows_outside_its_audience(
    role, seen, unseen, users, client, person, audiences
):
    # The journey stage too: told to sales only.
    disclose(person, key="journey_stage", value="ready_to_talk", audience="sales")
    login(client, users, role)
    detail = html(client.get(reverse("contact", args=[person.pk])))
    assert seen in detail and EVERYONE_VALUE in detail
    assert unseen not in detail
    # The timeline names the other audience's disclosure without its value.
    other_key = "pain_point" if role == Role.MARKETER else "budget"
    other_audience = "sales" if role == Role.MARKETER else "marketing"
    assert f"Disclosed {other_key} to {other_audience} (value not shown)" in detail

    listing = html(client.get(reverse("contacts")))
    assert unseen not in listing
    assert (">Ready to talk</td>" in listing) == (role == Role.SALES_REP)
    staged = html(client.get(reverse("contacts"), {"stage": "ready_to_talk"}))
    assert ("Ada Lovelace" in staged) == (role == Role.SALES_REP)

    other = audiences["sales" if role == Role.MARKETER else "marketing"]
    assert client.get(reverse("disclosure-withdraw", args=[other.pk])).status_code == 404
    assert client.post(reverse("disclosure-withdraw", args=[other.pk])).status_code == 404
    other.refresh_from_db()
    assert other.withdrawn_at is None


def test_withdrawn_and_expired_disclosures_are_not_shown(users, client, person):
    withdrawn = disclose(person, value="withdrawn-value")
    services.disclosure_withdraw(disclosure=withdrawn, actor=SYSTEM)
    disclose(
        person,
        value="expired-value",
        occurred_at=timezone.now() - timedelta(days=2),
        expires_at=timezone.now() - timedelta(days=1),
    )
    page = html(login(client, users, Role.MANAGER).get(reverse("contact", args=[person.pk])))
    assert "withdrawn-value" not in page
    assert "expired-value" not in page


# --- add a contact -----------------------------------------------------------------------


def test_a_marketer_adds_a_contact_with_an_organization(users, client):
    before = counts()
    response = login(client, users, Role.MARKETER).post(
        reverse("contact-new"),
        {
            "email": "grace@navy.test",
            "first_name": "Grace",
            "last_name": "Hopper",
            "title": "Rear Admiral",
            "organization_name": "US Navy",
            "organization_domain": "Navy.Test",
        },
    )
    contact = Contact.objects.get(email_key="grace@navy.test")
    assert response.status_code == 302
    assert response["Location"] == reverse("contact", args=[contact.pk])
    assert (contact.first_name, contact.last_name, contact.title) == (
        "Grace",
        "Hopper",
        "Rear Admiral",
    )
    assert contact.organization is not None
    assert (contact.organization.name, contact.organization.domain) == ("US Navy", "navy.test")
    # A contact, an organization and their two ledger entries.
    assert counts() == (before[0] + 1, before[1] + 1, before[2], before[3], before[4] + 2)
    entry = LedgerEntry.objects.get(action="contact.create", contact_id=contact.pk)
    assert entry.actor_label == users[Role.MARKETER].username
    page = html(client.get(response["Location"]))
    assert "Contact added." in page and "Grace Hopper" in page


def test_adding_without_an_organization_leaves_it_empty(users, client):
    login(client, users, Role.SALES_REP).post(reverse("contact-new"), {"email": "solo@example.com"})
    contact = Contact.objects.get(email_key="solo@example.com")
    assert contact.organization is None


def test_a_known_email_leads_to_the_contact_already_on_record(users, client, person):
    before = counts()
    response = login(client, users, Role.MARKETER).post(
        reverse("contact-new"),
        {"email": "  ADA@example.COM ", "first_name": "Someone else"},
        follow=True,
    )
    assert response.redirect_chain == [(reverse("contact", args=[person.pk]), 302)]
    assert "already on record" in html(response)
    assert counts() == before
    person.refresh_from_db()
    assert person.first_name == "Ada"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": ""}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "x" * 250 + "@example.com"}, "email"),
        ({"email": "ok@example.com", "first_name": "x" * 151}, "first_name"),
        ({"email": "ok@example.com", "last_name": "x" * 151}, "last_name"),
        ({"email": "ok@example.com", "title": "x" * 201}, "title"),
        ({"email": "ok@example.com", "organization_name": "x" * 201}, "organization_name"),
        ({"email": "ok@example.com", "organization_domain": "not a domain"}, "organization_domain"),
        (
            {"email": "ok@example.com", "organization_domain": "a" * 250 + ".com"},
            "organization_domain",
        ),
    ],
)
def test_bad_contact_input_is_refused_and_writes_nothing(data, field, users, client):
    before = counts()
    response = login(client, users, Role.MARKETER).post(reverse("contact-new"), data)
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in html(response)
    assert counts() == before


def test_a_hostile_name_is_stored_as_given_and_shown_escaped(users, client):
    login(client, users, Role.MARKETER)
    response = client.post(
        reverse("contact-new"), {"email": "x@hostile.test", "first_name": HOSTILE}, follow=True
    )
    assert Contact.objects.get(email_key="x@hostile.test").first_name == HOSTILE
    page = html(response)
    assert HOSTILE_ESCAPED in page
    assert "<script" not in page


def test_a_bad_form_is_shown_again_with_what_was_typed_escaped(users, client):
    response = login(client, users, Role.MARKETER).post(
        reverse("contact-new"), {"email": HOSTILE, "title": HOSTILE}
    )
    assert response.status_code == 400
    page = html(response)
    assert "Enter a valid email address." in page
    assert HOSTILE_ESCAPED in page and "<script" not in page


# --- consents ----------------------------------------------------------------------------


def test_recording_a_consent(users, client, person):
    before = counts()
    response = login(client, users, Role.SALES_REP).post(
        reverse("consent-new", args=[person.pk]),
        {
            "purpose": "sales_contact",
            "granted": "granted",
            "source": "call with Ada",
            "notice_version": "2026-01",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("contact", args=[person.pk])
    consent = Consent.objects.get(contact=person)
    assert (consent.purpose, consent.granted, consent.source, consent.notice_version) == (
        "sales_contact",
        True,
        "call with Ada",
        "2026-01",
    )
    assert counts() == (*before[:2], before[2] + 1, before[3], before[4] + 1)
    page = html(client.get(response["Location"]))
    assert "Consent recorded." in page
    assert "Consent to sales contact granted (source: call with Ada, notice 2026-01)" in page


@override_settings(TIME_ZONE="Europe/Berlin")
def test_a_withdrawal_at_a_local_time_is_read_in_the_current_time_zone(users, client, person):
    response = login(client, users, Role.MARKETER).post(
        reverse("consent-new", args=[person.pk]),
        {
            "purpose": "marketing_email",
            "granted": "withdrawn",
            "source": "unsubscribe link",
            "occurred_at": "2025-06-01T12:30",
        },
    )
    assert response.status_code == 302
    consent = Consent.objects.get(contact=person)
    assert consent.granted is False
    # Berlin is UTC+2 in June.
    assert consent.occurred_at == datetime(2025, 6, 1, 10, 30, tzinfo=UTC)


def test_the_consent_form_names_the_time_zone(users, client, person):
    page = html(login(client, users, Role.MARKETER).get(reverse("consent-new", args=[person.pk])))
    assert "Time zone: UTC." in page
    assert 'type="datetime-local"' in page
    # Neither answer is chosen for the user.
    assert "checked" not in page


def future_local() -> str:
    return timezone.localtime(timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"granted": ""}, "granted"),
        ({"granted": "maybe"}, "granted"),
        ({"purpose": ""}, "purpose"),
        ({"purpose": "telepathy"}, "purpose"),
        ({"source": "   "}, "source"),
        ({"source": "x" * 201}, "source"),
        ({"notice_version": "x" * 65}, "notice_version"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "future"}, "occurred_at"),
    ],
)
def test_bad_consent_input_is_refused_and_writes_nothing(changes, field, users, client, person):
    data = {"purpose": "analytics", "granted": "granted", "source": "web form"}
    data.update(changes)
    if data.get("occurred_at") == "future":
        data["occurred_at"] = future_local()
    before = counts()
    response = login(client, users, Role.MARKETER).post(
        reverse("consent-new", args=[person.pk]), data
    )
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in html(response)
    assert counts() == before


def test_a_future_consent_time_says_so(users, client, person):
    response = login(client, users, Role.MARKETER).post(
        reverse("consent-new", args=[person.pk]),
        {
            "purpose": "analytics",
            "granted": "granted",
            "source": "web",
            "occurred_at": future_local(),
        },
    )
    assert "This time is in the future." in html(response)


# --- disclosures -------------------------------------------------------------------------


def test_recording_a_disclosure_for_marketing(users, client, person):
    before = counts()
    login(client, users, Role.MARKETER)
    form = html(client.get(reverse("disclosure-new", args=[person.pk])))
    assert '<datalist id="disclosure-keys">' in form
    assert '<option value="journey_stage">' in form
    assert "checked" not in form  # no audience is chosen for the user
    response = client.post(
        reverse("disclosure-new", args=[person.pk]),
        {
            "key": "use_case",
            "value": "Tabulating Bernoulli numbers",
            "audience": "marketing",
            "purpose": "personalization",
            "source": "conversation",
        },
    )
    assert response.status_code == 302
    disclosure = Disclosure.objects.get(contact=person)
    assert (disclosure.key, disclosure.audience, disclosure.purpose, disclosure.source) == (
        "use_case",
        "marketing",
        "personalization",
        "conversation",
    )
    assert disclosure.expires_at is None
    assert counts() == (*before[:3], before[3] + 1, before[4] + 1)
    page = html(client.get(response["Location"]))
    assert "Disclosure recorded." in page
    assert "Disclosed use_case to marketing: Tabulating Bernoulli numbers" in page
    # ...and a sales rep sees that it was disclosed, but not what.
    sales = html(login(Client(), users, Role.SALES_REP).get(response["Location"]))
    assert "Tabulating Bernoulli numbers" not in sales
    assert "Disclosed use_case to marketing (value not shown)" in sales


def test_a_disclosure_with_an_expiry(users, client, person):
    expires = timezone.localtime(timezone.now() + timedelta(days=30)).replace(
        second=0, microsecond=0
    )
    response = login(client, users, Role.MANAGER).post(
        reverse("disclosure-new", args=[person.pk]),
        {
            "key": "journey_stage",
            "value": "comparing",
            "audience": "all",
            "purpose": "qualification",
            "source": "self",
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 302
    assert Disclosure.objects.get(contact=person).expires_at == expires


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"audience": ""}, "audience", "This field is required."),
        ({"audience": "everyone"}, "audience", "Select a valid choice."),
        ({"purpose": ""}, "purpose", "This field is required."),
        ({"purpose": "curiosity"}, "purpose", "Select a valid choice."),
        ({"source": "rumour"}, "source", "Select a valid choice."),
        ({"key": "Budget!"}, "key", "lower-case letters"),
        ({"key": "9lives"}, "key", "lower-case letters"),
        ({"key": "k" * 65}, "key", "at most 64 characters"),
        ({"value": ""}, "value", "This field is required."),
        ({"value": "x" * 2001}, "value", "at most 2000 characters"),
        # Refused by the service, shown on the field it names.
        ({"key": "journey_stage", "value": "bored"}, "value", "A journey stage is one of"),
        ({"expires_at": "2000-01-01T00:00"}, "expires_at", "The expiry must come after"),
    ],
)
def test_bad_disclosure_input_is_refused_and_writes_nothing(
    changes, field, message, users, client, person
):
    data = {
        "key": "budget",
        "value": "50k",
        "audience": "marketing",
        "purpose": "qualification",
        "source": "form",
    }
    data.update(changes)
    before = counts()
    response = login(client, users, Role.MARKETER).post(
        reverse("disclosure-new", args=[person.pk]), data
    )
    assert response.status_code == 400
    page = html(response)
    assert f'id="id_{field}_error"' in page
    assert message in page
    assert counts() == before


def test_a_hostile_disclosure_value_is_shown_escaped(users, client, person):
    login(client, users, Role.MARKETER).post(
        reverse("disclosure-new", args=[person.pk]),
        {
            "key": "pain_point",
            "value": HOSTILE,
            "audience": "all",
            "purpose": "qualification",
            "source": "form",
        },
    )
    assert Disclosure.objects.get(contact=person).value == HOSTILE
    page = html(client.get(reverse("contact", args=[person.pk])))
    # The disclosures table and the timeline both show it, escaped.
    assert page.count(HOSTILE_ESCAPED) == 2
    assert "<script" not in page


# --- withdrawing a disclosure ----------------------------------------------------------


def test_withdrawing_asks_first_then_withdraws(users, client, person, audiences):
    disclosure = audiences["marketing"]
    login(client, users, Role.MARKETER)
    before = counts()
    confirm = client.get(reverse("disclosure-withdraw", args=[disclosure.pk]))
    assert confirm.status_code == 200
    assert MARKETING_VALUE in html(confirm) and "Withdraw this disclosure?" in html(confirm)
    assert counts() == before
    disclosure.refresh_from_db()
    assert disclosure.withdrawn_at is None

    response = client.post(reverse("disclosure-withdraw", args=[disclosure.pk]), follow=True)
    assert response.redirect_chain == [(reverse("contact", args=[person.pk]), 302)]
    disclosure.refresh_from_db()
    assert disclosure.withdrawn_at is not None
    assert counts() == (*before[:4], before[4] + 1)
    page = html(response)
    assert "The disclosure of budget was withdrawn." in page
    assert MARKETING_VALUE not in page
    assert "Withdrew the disclosure of budget" in page
    # Once withdrawn, nobody finds it again.
    assert client.post(reverse("disclosure-withdraw", args=[disclosure.pk])).status_code == 404


# --- merge ---------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["id", "email"])
def test_merging_a_duplicate_asks_first_then_merges(by, users, client, person):
    duplicate = make_contact(email="ada.l@example.com", first_name="A.", last_name="Lovelace")
    disclose(duplicate, value="from-the-duplicate")
    login(client, users, Role.MARKETER)
    before = counts()
    which = str(duplicate.pk) if by == "id" else "ADA.L@example.com"
    review = client.post(
        reverse("contact-merge", args=[person.pk]), {"merge": which, "reason": "same person"}
    )
    assert review.status_code == 200
    page = html(review)
    assert "Merge A. Lovelace into Ada Lovelace?" in page
    assert "ada.l@example.com" in page
    assert counts() == before
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id is None

    response = client.post(
        reverse("contact-merge", args=[person.pk]),
        {"merge": str(duplicate.pk), "reason": "same person", "confirmed": "1"},
        follow=True,
    )
    assert response.redirect_chain == [(reverse("contact", args=[person.pk]), 302)]
    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == person.pk
    entry = LedgerEntry.objects.filter(action="contact.merge").last()
    assert entry is not None and entry.reason == "same person"
    page = html(response)
    assert "A. Lovelace was merged into this one." in page
    assert "from-the-duplicate" in page


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("self", "A contact cannot be merged into itself."),
        ("999999", "No contact on record has this id or email."),
        ("nobody@example.com", "No contact on record has this id or email."),
        ("not an email", "Enter a contact&#x27;s id or email address."),
        ("", "This field is required."),
        ("9" * 30, "No contact on record has this id or email."),
    ],
)
def test_bad_merges_are_refused_and_change_nothing(which, message, users, client, person):
    make_contact(email="other@example.com")
    if which == "self":
        which = str(person.pk)
    before = counts()
    response = login(client, users, Role.MANAGER).post(
        reverse("contact-merge", args=[person.pk]), {"merge": which, "confirmed": "1"}
    )
    assert response.status_code == 400
    page = html(response)
    assert 'id="id_merge_error"' in page and message in page
    assert counts() == before
    assert not Contact.objects.filter(merged_into__isnull=False).exists()


def test_a_contact_already_merged_elsewhere_cannot_be_merged_again(users, client, person):
    first = make_contact(email="first@example.com")
    second = make_contact(email="second@example.com")
    services.contact_merge(keep=first, merge=second, actor=SYSTEM)
    before = counts()
    response = login(client, users, Role.MARKETER).post(
        reverse("contact-merge", args=[person.pk]), {"merge": str(second.pk), "confirmed": "1"}
    )
    assert response.status_code == 400
    assert counts() == before
    second.refresh_from_db()
    assert second.merged_into_id == first.pk


# --- erasure -------------------------------------------------------------------------------


def test_the_erase_page_explains_and_asks_for_the_email(users, client, person):
    response = login(client, users, Role.PRIVACY_OFFICER).get(
        reverse("contact-erase", args=[person.pk])
    )
    page = html(response)
    assert "cannot be undone" in page
    assert "<code>Ada@Example.com</code>" in page
    assert 'name="confirmation"' in page and 'name="reason"' in page


@pytest.mark.parametrize("typed", ["", "ada@example.org", "ERASE", "yes"])
def test_a_wrong_confirmation_erases_nothing(typed, users, client, person, audiences):
    before = counts()
    response = login(client, users, Role.PRIVACY_OFFICER).post(
        reverse("contact-erase", args=[person.pk]), {"confirmation": typed}
    )
    assert response.status_code == 400
    assert 'id="id_confirmation_error"' in html(response)
    assert counts() == before
    person.refresh_from_db()
    assert person.erased_at is None and person.email == "Ada@Example.com"
    assert Disclosure.objects.get(pk=audiences["sales"].pk).value == SALES_VALUE


def test_erasing_with_the_email_erases_and_returns_to_the_list(users, client, person, audiences):
    before = counts()
    response = login(client, users, Role.PRIVACY_OFFICER).post(
        reverse("contact-erase", args=[person.pk]),
        {"confirmation": " ada@example.com ", "reason": "request #12"},
        follow=True,
    )
    assert response.redirect_chain == [(reverse("contacts"), 302)]
    assert "The person was erased" in html(response)
    person.refresh_from_db()
    assert person.erased_at is not None
    assert (person.email, person.first_name, person.last_name) == (None, "", "")
    assert set(Disclosure.objects.filter(contact=person).values_list("value", flat=True)) == {""}
    entry = LedgerEntry.objects.get(action="contact.erase")
    assert entry.reason == "request #12"
    assert counts() == (*before[:4], before[4] + 1)
    assert "Ada Lovelace" not in html(response)


# --- export --------------------------------------------------------------------------------


def test_the_export_asks_first_and_records_nothing_on_get(users, client, person):
    before = counts()
    response = login(client, users, Role.PRIVACY_OFFICER).get(
        reverse("contact-export", args=[person.pk])
    )
    assert response.status_code == 200
    assert "Download the export" in html(response)
    assert counts() == before


def test_the_export_downloads_everything_as_json(users, client, person, audiences):
    services.disclosure_withdraw(disclosure=audiences["sales"], actor=SYSTEM)
    before = counts()
    response = login(client, users, Role.PRIVACY_OFFICER).post(
        reverse("contact-export", args=[person.pk])
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == (
        f'attachment; filename="contact-{person.pk}-subject-access.json"'
    )
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["contact"]["email"] == "Ada@Example.com"
    # The person is owed every disclosure, whatever its audience, withdrawn too.
    assert {item["value"] for item in data["disclosures"]} == {
        MARKETING_VALUE,
        SALES_VALUE,
        EVERYONE_VALUE,
    }
    assert counts() == (*before[:4], before[4] + 1)
    assert LedgerEntry.objects.filter(action="contact.export", contact_id=person.pk).count() == 1
