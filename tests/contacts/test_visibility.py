"""No disclosure outside the viewer's audience appears in any response, by any path.

One person discloses a marked value to each audience (and one withdrawn, one
expired); every endpoint and page that shows contact data is fetched as a
marketer and as a sales rep, and the bodies are searched for the markers.
"""

from datetime import timedelta
from typing import cast

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from contacts import services
from contacts.models import Contact
from leadrecord.ledger import Actor

from ..factories import UserFactory, contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
MARKERS = {
    "marketing": "MKT-ONLY-4471",
    "sales": "SALES-ONLY-8823",
    "all": "SHARED-ALL-1290",
}
WITHDRAWN = "WITHDRAWN-5518"
EXPIRED = "EXPIRED-6604"
EVERY_MARKER = (*MARKERS.values(), WITHDRAWN, EXPIRED)


@pytest.fixture
def person(db: None) -> Contact:
    contact = contact_make(email="vis@seen.example", first_name="Vera", organization="seen.example")
    for audience, value in MARKERS.items():
        services.disclosure_record(
            contact=contact,
            key=f"note_{audience}",
            value=value,
            audience=audience,
            purpose="qualification",
            source="conversation",
            actor=SYSTEM,
        )
    services.disclosure_record(
        contact=contact,
        key="journey_stage",
        value="ready_to_talk",
        audience="sales",
        purpose="sales_contact",
        source="self",
        actor=SYSTEM,
    )
    withdrawn = services.disclosure_record(
        contact=contact,
        key="budget",
        value=WITHDRAWN,
        audience="all",
        purpose="qualification",
        source="form",
        actor=SYSTEM,
    )
    services.disclosure_withdraw(disclosure=withdrawn, actor=SYSTEM)
    services.disclosure_record(
        contact=contact,
        key="timeline",
        value=EXPIRED,
        audience="all",
        purpose="qualification",
        source="form",
        actor=SYSTEM,
        occurred_at=timezone.now() - timedelta(days=30),
        expires_at=timezone.now() - timedelta(days=1),
    )
    services.consent_record(
        contact=contact, purpose="sales_contact", granted=True, source="form", actor=SYSTEM
    )
    return contact


def api_paths(contact: Contact) -> list[str]:
    base = f"/api/v1/contacts/{contact.pk}"
    return [
        "/api/v1/contacts/",
        "/api/v1/contacts/?search=vera",
        "/api/v1/contacts/?search=SALES-ONLY-8823",
        "/api/v1/contacts/?search=MKT-ONLY-4471",
        f"/api/v1/contacts/?organization={contact.organization_id}",
        "/api/v1/contacts/?stage=ready_to_talk",
        f"{base}/",
        f"{base}/timeline/",
        f"{base}/disclosures/",
        f"{base}/consents/",
    ]


def page_paths(contact: Contact) -> list[str]:
    base = f"/contacts/{contact.pk}"
    return [
        "/contacts/",
        "/contacts/?search=vera",
        "/contacts/?search=SALES-ONLY-8823",
        "/contacts/?search=MKT-ONLY-4471",
        "/contacts/?stage=ready_to_talk",
        f"{base}/",
        f"{base}/consents/new/",
        f"{base}/disclosures/new/",
        f"{base}/merge/",
        "/",
    ]


def admin_paths(contact: Contact) -> list[str]:
    return [
        "/admin/contacts/disclosure/",
        f"/admin/contacts/contact/{contact.pk}/change/",
        "/admin/contacts/contact/",
        "/admin/contacts/disclosure/?q=SALES",
    ]


def forbidden_markers(role: str) -> list[str]:
    visible = {"marketer": {"marketing", "all"}, "sales_rep": {"sales", "all"}}[role]
    hidden = [value for audience, value in MARKERS.items() if audience not in visible]
    return [*hidden, WITHDRAWN, EXPIRED]


@pytest.mark.parametrize("role", ["marketer", "sales_rep"])
def test_no_path_shows_a_disclosure_outside_the_viewers_audience(person, api_client_for, role):
    user = cast(User, UserFactory(username=f"walker-{role}", role=role, is_staff=True))
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="contacts"))
    api = api_client_for(user)
    browser = Client()
    browser.force_login(user)
    bodies: dict[str, str] = {}
    for path in api_paths(person):
        response = api.get(path)
        assert response.status_code == 200, path
        bodies[path] = response.content.decode()
    for path in [*page_paths(person), *admin_paths(person)]:
        response = browser.get(path)
        assert response.status_code == 200, (path, response.status_code)
        bodies[path] = response.content.decode()
    for path, body in bodies.items():
        if path.startswith("/contacts/?search="):
            # The search box, and the links that keep the filters (sorting, paging, the
            # CSV), show back what was typed; that is not a leak.
            typed = path.split("=", 1)[1]
            body = body.replace(f'value="{typed}"', "").replace(f"search={typed}", "")
        for marker in forbidden_markers(role):
            assert marker not in body, f"{marker} leaked through {path} to a {role}"

    own = MARKERS["marketing" if role == "marketer" else "sales"]
    # The walk is meaningful: the viewer's own audience does show on the main paths.
    for path in (f"/api/v1/contacts/{person.pk}/", f"/contacts/{person.pk}/"):
        assert own in bodies[path] and MARKERS["all"] in bodies[path], path
    assert own in bodies[f"/api/v1/contacts/{person.pk}/timeline/"]


def test_a_searched_disclosure_value_does_not_find_the_person(person, users, api_client_for):
    marketer = api_client_for(users["marketer"])
    found = marketer.get("/api/v1/contacts/", {"search": MARKERS["sales"]}).json()
    assert found["count"] == 0


def test_the_stage_shown_follows_the_audience(person, users, api_client_for):
    marketer = api_client_for(users["marketer"]).get(f"/api/v1/contacts/{person.pk}/").json()
    sales = api_client_for(users["sales_rep"]).get(f"/api/v1/contacts/{person.pk}/").json()
    assert marketer["journey_stage"] is None
    assert sales["journey_stage"] == "ready_to_talk"
