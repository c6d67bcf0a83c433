"""The admin is read-only and shows disclosures only through ``disclosures_visible_to``."""

from typing import cast

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from contacts import services
from contacts.models import Consent, Contact, ContactKey, Disclosure, Organization
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry

from ..factories import UserFactory, contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
VALUES = {
    "marketing": "MKT-ADMIN-3141",
    "sales": "SALES-ADMIN-2718",
    "all": "ALL-ADMIN-1618",
}
MODELS = (Organization, Contact, Consent, Disclosure)


@pytest.fixture
def person() -> Contact:
    contact = contact_make(
        email="ines@admin.example",
        first_name="Ines",
        last_name="Okafor",
        organization="admin.example",
    )
    for audience, value in VALUES.items():
        services.disclosure_record(
            contact=contact,
            key=f"note_{audience}",
            value=value,
            audience=audience,
            purpose="qualification",
            source="conversation",
            actor=SYSTEM,
        )
    services.consent_record(
        contact=contact,
        purpose="marketing_email",
        granted=True,
        source="webinar registration",
        notice_version="2026-06",
        actor=SYSTEM,
    )
    return contact


def staff_client(role: str | None, *, superuser: bool = False) -> Client:
    user = cast(
        User,
        UserFactory(
            username=f"admin-{role or 'none'}-{superuser}",
            role=role,
            is_staff=True,
            is_superuser=superuser,
        ),
    )
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="contacts", codename__startswith="view_")
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def marketer() -> Client:
    return staff_client("marketer")


def admin_url(model: type[Model], view: str, *args: object) -> str:
    return reverse(f"admin:contacts_{model._meta.model_name}_{view}", args=args)


def pages(person: Contact) -> list[str]:
    """Every changelist and change page for the person's rows."""
    marketing = Disclosure.objects.get(contact=person, audience="marketing")
    return [
        admin_url(Organization, "changelist"),
        admin_url(Organization, "change", person.organization_id),
        admin_url(Contact, "changelist"),
        admin_url(Contact, "changelist") + "?q=admin.example",
        admin_url(Contact, "change", person.pk),
        admin_url(Consent, "changelist"),
        admin_url(Consent, "change", Consent.objects.get(contact=person).pk),
        admin_url(Disclosure, "changelist"),
        admin_url(Disclosure, "changelist") + "?q=note",
        admin_url(Disclosure, "change", marketing.pk),
    ]


def test_a_marketer_sees_marketing_disclosures_and_never_sales_ones(person, marketer):
    bodies = {}
    for url in pages(person):
        response = marketer.get(url)
        assert response.status_code == 200, url
        bodies[url] = response.content.decode()
        assert VALUES["sales"] not in bodies[url], url
    for url in (
        admin_url(Contact, "change", person.pk),
        admin_url(Disclosure, "changelist"),
    ):
        assert VALUES["marketing"] in bodies[url], url
        assert VALUES["all"] in bodies[url], url
    assert "Ines" in bodies[admin_url(Contact, "changelist") + "?q=admin.example"]
    assert "webinar registration" in bodies[admin_url(Consent, "changelist")]


def test_a_sales_disclosure_cannot_be_opened_by_a_marketer(person, marketer):
    sales = Disclosure.objects.get(contact=person, audience="sales")
    response = marketer.get(admin_url(Disclosure, "change", sales.pk), follow=True)
    assert VALUES["sales"] not in response.content.decode()
    assert response.redirect_chain  # "doesn't exist", back to the admin index


def test_a_sales_rep_sees_the_other_half(person):
    sales_rep = staff_client("sales_rep")
    body = sales_rep.get(admin_url(Disclosure, "changelist")).content.decode()
    assert VALUES["sales"] in body and VALUES["all"] in body
    assert VALUES["marketing"] not in body


def test_a_superuser_without_a_role_sees_no_disclosure(person):
    superuser = staff_client(None, superuser=True)
    for url in (admin_url(Disclosure, "changelist"), admin_url(Contact, "change", person.pk)):
        body = superuser.get(url).content.decode()
        assert not any(value in body for value in VALUES.values()), url


def test_withdrawn_disclosures_are_not_shown(person, marketer):
    marketing = Disclosure.objects.get(contact=person, audience="marketing")
    services.disclosure_withdraw(disclosure=marketing, actor=SYSTEM)
    for url in (admin_url(Disclosure, "changelist"), admin_url(Contact, "change", person.pk)):
        assert VALUES["marketing"] not in marketer.get(url).content.decode(), url


def test_erased_and_merged_contacts_are_not_listed(person, marketer):
    merged = contact_make(email="merged@admin.example", first_name="Mergeda")
    services.contact_merge(keep=person, merge=merged, actor=SYSTEM)
    erased = contact_make(email="erased@admin.example", first_name="Erasedo")
    services.contact_erase(contact=erased, actor=SYSTEM)
    body = marketer.get(admin_url(Contact, "changelist")).content.decode()
    assert "Ines" in body
    assert "Mergeda" not in body and "Erasedo" not in body
    assert marketer.get(admin_url(Contact, "change", merged.pk), follow=True).redirect_chain


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_the_admin_cannot_add_change_or_delete(person, marketer, model):
    superuser = staff_client("manager", superuser=True)
    row = model.objects.first()
    entries = LedgerEntry.objects.count()
    for client in (marketer, superuser):
        changelist = client.get(admin_url(model, "changelist")).content.decode()
        assert admin_url(model, "add") not in changelist
        assert "delete_selected" not in changelist
        assert client.get(admin_url(model, "add")).status_code == 403
        assert client.post(admin_url(model, "add"), {}).status_code == 403
        assert client.get(admin_url(model, "delete", row.pk)).status_code == 403
        assert client.post(admin_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
        change = client.get(admin_url(model, "change", row.pk))
        assert change.status_code == 200
        assert 'type="submit"' not in change.content.decode().split('id="content-main"')[1]
        assert client.post(admin_url(model, "change", row.pk), {}).status_code == 403
    assert model.objects.count() == (3 if model is Disclosure else 1)
    assert LedgerEntry.objects.count() == entries


def test_contact_keys_are_not_in_the_admin(person, marketer):
    assert not admin.site.is_registered(ContactKey)
    assert all(admin.site.is_registered(model) for model in MODELS)
    superuser = staff_client(None, superuser=True)
    assert superuser.get("/admin/contacts/contactkey/").status_code == 404
    index = superuser.get("/admin/contacts/").content.decode()
    assert "contactkey" not in index.lower()
    assert "Contact keys" not in index
