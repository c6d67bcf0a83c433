"""Erasure covers every stored copy: each text, JSON and binary field of every model is
classified in ``leadrecord.personal_data``, and erasure removes a value seeded into each
field classified as personal, as a dump of the whole database shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.urls import reverse

from buyers import portal, visits
from buyers import services as buyer_services
from contacts import services
from contacts.erasure import email_hashes
from contacts.models import Contact, ContactKey, ErasedEmail, ImportJob
from contacts.sealing import contact_keys, unseal
from handoff import services as handoff_services
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.models import LedgerEntry
from leadrecord.periodic import background_wait
from leadrecord.personal_data import NOT_PERSONAL_APPS, PERSONAL_DATA, Erasure, Personal
from leadrecord.roles import Role
from webhooks import services as webhook_services

from ..factories import contact_make
from ..servers import free_port
from .test_erasure import _database_dump

SYSTEM = Actor.system("test")
EMAIL = "Erinwyn.Erasable@Gone.example"
ALIAS = "erinwyn.alias@gone.example"
WHEN = "2026-01-15T09:30:00+01:00"
# Every value seeded about the person; none may be left anywhere after erasure.
MARKERS = (
    EMAIL,
    ALIAS,
    "Erinwyn",
    "Erasable",
    "ERIN-TITLE-4471",
    "ERIN-BUDGET-7731",
    "ERIN-NOTE-5521",
    "ERIN-DECISION-8890",
)
BYSTANDER = "bystander@else.example"

TEXT_FIELDS = (
    models.CharField,  # EmailField and SlugField too
    models.TextField,
    models.JSONField,
    models.BinaryField,
    models.FileField,
)


def _project_app(label: str) -> bool:
    """An app whose code is the project's own (not Django's or a library's)."""
    top = apps.get_app_config(label).name.partition(".")[0]
    return (Path(settings.BASE_DIR) / top).is_dir()


def _text_fields() -> list[tuple[str, type[models.Model], models.Field[Any, Any]]]:
    return [
        (f"{model._meta.label}.{field.name}", model, field)
        for model in apps.get_models()
        if _project_app(model._meta.app_label)
        for field in model._meta.concrete_fields
        if isinstance(field, TEXT_FIELDS)
    ]


def test_every_field_that_can_hold_text_is_classified():
    names = {name for name, _, _ in _text_fields()}
    unclassified = sorted(names - set(PERSONAL_DATA))
    assert not unclassified, (
        "Classify these fields in leadrecord/personal_data.py (personal, and how erasure "
        f"removes them, or not personal, and why): {unclassified}"
    )
    assert not sorted(set(PERSONAL_DATA) - names), "the registry names fields that do not exist"
    others = {
        model._meta.app_label
        for model in apps.get_models()
        if not _project_app(model._meta.app_label)
    }
    assert not sorted(others - set(NOT_PERSONAL_APPS)), (
        "An app outside the project stores rows: say in NOT_PERSONAL_APPS why it holds no "
        "one's personal data, or classify its fields"
    )


def _seed(users: dict[str, Any], client: Any, api_client_for: Any) -> tuple[Contact, ImportJob]:
    """The person, with a distinct value in every field the registry calls personal."""
    # A webhook endpoint whose outbox copies her disclosure (nothing listens there: its
    # messages stay pending, as an outage would leave them).
    webhook_services.endpoint_create(
        url=f"http://127.0.0.1:{free_port()}/hooks",
        event_types=["disclosure.recorded"],
        audience="sales",
        actor=SYSTEM,
    )
    erin = contact_make(
        email=EMAIL, first_name="Erinwyn", last_name="Erasable", title="ERIN-TITLE-4471"
    )
    alias = contact_make(email=ALIAS, first_name="Erinwyn", last_name="Erasable")
    services.contact_merge(keep=erin, merge=alias, actor=SYSTEM)
    services.disclosure_record(
        contact=erin,
        key="budget",
        value="ERIN-BUDGET-7731",
        audience="sales",
        purpose="qualification",
        source="conversation",
        actor=SYSTEM,
    )
    services.consent_record(
        contact=erin, purpose="sales_contact", granted=True, source="demo request", actor=SYSTEM
    )
    ruleset = handoff_services.ruleset_create(
        name="r", points={"channel:web": 1}, mql_threshold=50, sla_hours=24, actor=SYSTEM
    )
    handoff_services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    handoff = handoff_services.handoff_create(contact=erin, actor=SYSTEM, note="ERIN-NOTE-5521")
    handoff_services.handoff_reject(
        handoff=handoff, user=users[Role.SALES_REP], reason="other", note="ERIN-DECISION-8890"
    )
    # An answer kept for an Idempotency-Key, naming her in the external id of an event
    # it refused (an event stored keeps its external id in the ledger, in plain: the
    # API asks senders for ids, not people).
    response = api_client_for(users[Role.INTEGRATION]).post(
        "/api/v1/events/",
        {
            "events": [
                {
                    "type": "touch",
                    "source_system": "crm",
                    "external_id": f"visit-of-{EMAIL}",
                    "occurred_at": WHEN,
                    "contact": {"email": EMAIL},
                    "channel": "nowhere",
                    "kind": "visit",
                }
            ]
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="seed-1",
    )
    assert response.json()["rejected"] == 1
    # An upload not yet imported, named after her, with a finding on one of her rows.
    client.force_login(users[Role.MARKETER])
    text = (
        "email,channel,kind,occurred_at,notes\n"
        f"{EMAIL},web,visit,{WHEN},\n"
        f"{ALIAS},nowhere,visit,{WHEN},\n"
        f"{BYSTANDER},web,visit,{WHEN},asked about Erinwyn Erasable\n"
    )
    upload = SimpleUploadedFile("erasable-list.csv", text.encode(), content_type="text/csv")
    assert client.post(reverse("touch-import"), {"file": upload}).status_code == 302
    job = ImportJob.objects.get()
    # A form she sent, from a page and a click that name her, with a visitor id.
    form = buyer_services.buyer_form_create(
        slug="seeded-form",
        title="Form",
        consents=[{"purpose": "analytics", "notice": "Remember me", "version": "1"}],
        actor=SYSTEM,
    )
    sent = buyer_services.form_submit(
        form=form,
        data=buyer_services.FormInput(email=EMAIL, consents=frozenset({"analytics"})),
        arrival=buyer_services.Arrival(
            page_url="https://site.example/?who=Erinwyn",
            referrer="https://mail.example/Erasable",
            utm={"utm_term": "Erinwyn Erasable"},
            click_ids={"gclid": "Erinwyn"},
        ),
    )
    # A page she visited since, under that visitor id.
    visits.visit_record(
        page_url="https://site.example/pricing?ref=Erinwyn&utm_term=Erasable&gclid=Erinwyn",
        referrer="https://mail.example/Erasable",
        visitor_token=sent.visitor_token,
    )
    # A sign-in link to her portal.
    portal.portal_link_request(email=EMAIL, link_for=lambda token: token)
    # Someone else, who must be left alone.
    services.disclosure_record(
        contact=contact_make(email=BYSTANDER),
        key="budget",
        value="BYSTANDER-BUDGET",
        audience="all",
        purpose="qualification",
        source="form",
        actor=SYSTEM,
    )
    background_wait(30)  # the webhook sender's thread (no broker here) has given up
    return erin, job


def _holding_a_marker(model: type[models.Model], field: str) -> models.QuerySet[Any]:
    condition = models.Q()
    for marker in MARKERS:
        condition |= models.Q(**{f"{field}__icontains": marker})
    return model._default_manager.filter(condition)


def _check_field(
    name: str, model: type[models.Model], field: str, person: Personal, context: dict[str, Any]
) -> bool:
    """Whether the person's value is in this field (before erasure it must be; after, not)."""
    if name == "contacts.ImportJob.errors":
        # Findings hold row numbers, never values: hers are the rows of her emails.
        return any(error["row"] == 3 for error in context["job"].errors)
    if person.erasure == Erasure.DELETED:
        return bool(model._default_manager.filter(contact_id__in=context["ids"]).exists())
    if person.erasure == Erasure.SEALED:
        assert not _holding_a_marker(model, field).exists(), f"{name} holds a value in plain"
        keys = contact_keys(context["ids"])
        entries = LedgerEntry.objects.filter(contact_id__in=context["ids"])
        return any(
            unseal(key=keys.get(entry.contact_id or 0), contact_id=entry.contact_id or 0, payload=p)
            for entry in entries
            for p in (entry.before, entry.after)
        )
    if person.erasure == Erasure.KEYED_HASH:
        assert not _holding_a_marker(model, field).exists(), f"{name} holds a value in plain"
        return ErasedEmail.objects.filter(email_hash=email_hashes(EMAIL.lower())[0]).exists()
    return _holding_a_marker(model, field).exists()


@pytest.mark.django_db(transaction=True)
def test_erasure_removes_the_person_from_every_personal_field_and_the_dump(
    users, client, api_client_for
):
    erin, job = _seed(users, client, api_client_for)
    ids = [erin.pk, erin.pk + 1]
    assert Contact.objects.filter(pk__in=ids).count() == 2
    personal = [
        (name, model, field.name, classified)
        for name, model, field in _text_fields()
        if isinstance(classified := PERSONAL_DATA.get(name), Personal)
    ]
    context = {"ids": ids, "job": job}
    for name, model, field, person in personal:
        if person.erasure != Erasure.KEYED_HASH:
            assert _check_field(name, model, field, person, context), f"the seed fills {name}"
    before = _database_dump().lower()
    assert all(marker.lower() in before for marker in MARKERS)

    response = api_client_for(users[Role.PRIVACY_OFFICER]).post(
        f"/api/v1/contacts/{erin.pk}/erase/", {"reason": "request 12"}
    )

    assert response.status_code == 200, response.content
    job.refresh_from_db()
    context["job"] = job
    for name, model, field, person in personal:
        kept = _check_field(name, model, field, person, context)
        assert kept == (person.erasure == Erasure.KEYED_HASH), f"erasure leaves {name}"
    dump = _database_dump()
    left = [marker for marker in MARKERS if marker.lower() in dump.lower()]
    assert not left, f"the dump still holds {left}"
    assert "BYSTANDER-BUDGET" in dump and BYSTANDER in dump
    assert not ContactKey.objects.filter(contact_id__in=ids).exists()
    assert ledger_verify().ok


def _cached_bytes() -> bytes:
    """Everything in the (in-process) cache, as pickled (strings are UTF-8 in a pickle)."""
    return b"\n".join(cache._cache.values()).lower()  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_the_cache_holds_nothing_about_the_person_after_erasure(users, client, api_client_for):
    """What the cache holds (the reports, their charts) is aggregates, filed under the
    ledger's head; the pages that show the person must not be cached."""
    if "locmem" not in settings.CACHES["default"]["BACKEND"].lower():
        pytest.skip("reads the in-process cache")
    cache.clear()
    erin, _ = _seed(users, client, api_client_for)
    for role in (Role.MARKETER, Role.MANAGER, Role.SALES_REP):
        client.force_login(users[role])
        for url in (
            reverse("contact", args=[erin.pk]),
            f"{reverse('contacts')}?search=erasable",
            "/reports/marketing/",
            "/reports/manager/",
            "/reports/sales/",
        ):
            assert client.get(url).status_code in (200, 403)
    assert _cached_bytes(), "the reports cache their numbers"
    services.contact_erase(contact=erin, actor=SYSTEM)
    held = _cached_bytes()
    assert not [marker for marker in MARKERS if marker.lower().encode() in held]
