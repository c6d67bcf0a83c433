"""Erasure by crypto-shredding, and the subject-access export."""

import os
import subprocess
from pathlib import Path

import pytest
from django.db import connection

from contacts import services
from contacts.models import Consent, Contact, ContactKey, Disclosure
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.models import LedgerEntry

from ..factories import contact_make

SYSTEM = Actor.system("test")
EMAIL = "Erin.Erasable@Gone.example"
SECRETS = ("ERIN-BUDGET-7731", "ERIN-PAIN-9904", "Erasable-Alias@Gone.example")


def _seed_person() -> Contact:
    erin = contact_make(email=EMAIL, first_name="Erin", last_name="Erasable", title="CFO")
    alias = contact_make(email=SECRETS[2], first_name="Erin")
    services.disclosure_record(
        contact=erin,
        key="budget",
        value=SECRETS[0],
        audience="sales",
        purpose="qualification",
        source="conversation",
        actor=SYSTEM,
    )
    pain = services.disclosure_record(
        contact=alias,
        key="pain_point",
        value=SECRETS[1],
        audience="marketing",
        purpose="personalization",
        source="form",
        actor=SYSTEM,
    )
    services.disclosure_withdraw(disclosure=pain, actor=SYSTEM)
    services.consent_record(
        contact=erin, purpose="sales_contact", granted=True, source="demo request", actor=SYSTEM
    )
    services.contact_merge(keep=erin, merge=alias, actor=SYSTEM)
    # Someone else, who must be left alone.
    bystander = contact_make(email="bystander@else.example")
    services.disclosure_record(
        contact=bystander,
        key="budget",
        value="BYSTANDER-BUDGET",
        audience="all",
        purpose="qualification",
        source="form",
        actor=SYSTEM,
    )
    return erin


def _database_dump() -> str:
    """Every row of every table, as the database's own dump tool writes it."""
    if connection.vendor == "sqlite":
        return "\n".join(connection.connection.iterdump())
    settings = connection.settings_dict
    pg_bin = os.environ.get("LEADRECORD_TEST_PG_BIN", "")
    pg_dump = str(Path(pg_bin) / "pg_dump") if pg_bin else "pg_dump"
    result = subprocess.run(
        [
            pg_dump,
            "--data-only",
            "-h",
            settings["HOST"],
            "-p",
            str(settings["PORT"]),
            "-U",
            settings["USER"],
            settings["NAME"],
        ],
        capture_output=True,
        check=True,
        env={**os.environ, "PGPASSWORD": settings["PASSWORD"] or ""},
        timeout=120,
    )
    return result.stdout.decode()


def _assert_erased_from(dump: str) -> None:
    lowered = dump.lower()
    for secret in (EMAIL, *SECRETS, "Erasable"):
        assert secret.lower() not in lowered, secret


@pytest.mark.django_db(transaction=True)
def test_after_erasure_a_dump_of_the_database_holds_none_of_the_persons_data(users, api_client_for):
    erin = _seed_person()
    before_dump = _database_dump()
    assert EMAIL in before_dump and SECRETS[0] in before_dump  # the dump does show data
    totals = (Contact.objects.count(), Disclosure.objects.count(), Consent.objects.count())

    response = api_client_for(users["privacy_officer"]).post(
        f"/api/v1/contacts/{erin.pk}/erase/", {"reason": "Art. 17 request #12"}
    )

    assert response.status_code == 200, response.content
    _assert_erased_from(_database_dump())
    assert "BYSTANDER-BUDGET" in _database_dump()
    assert (Contact.objects.count(), Disclosure.objects.count(), Consent.objects.count()) == totals
    assert not ContactKey.objects.filter(contact__in=[erin.pk, erin.pk + 1]).exists()
    assert ledger_verify().ok
    entry = LedgerEntry.objects.filter(action="contact.erase").get()
    assert entry.reason == "Art. 17 request #12" and entry.actor_label == "the-privacy_officer"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_verify_ledger_command_passes_after_erasure(users, api_client_for):
    from django.core.management import call_command

    erin = _seed_person()
    api_client_for(users["privacy_officer"]).post(f"/api/v1/contacts/{erin.pk}/erase/")
    call_command("verify_ledger")  # raises SystemExit(1) on a broken chain


@pytest.mark.django_db
def test_erased_contact_is_gone_from_reads_and_refuses_writes(users, api_client_for):
    erin = _seed_person()
    services.contact_erase(contact=erin, actor=SYSTEM)
    marketer = api_client_for(users["marketer"])
    assert marketer.get(f"/api/v1/contacts/{erin.pk}/").status_code == 410
    assert EMAIL.lower() not in marketer.get("/api/v1/contacts/").content.decode().lower()
    before = (Disclosure.objects.count(), LedgerEntry.objects.count())
    response = marketer.post(
        f"/api/v1/contacts/{erin.pk}/disclosures/",
        {
            "key": "budget",
            "value": "x",
            "audience": "all",
            "purpose": "qualification",
            "source": "form",
        },
    )
    assert response.status_code == 410
    assert response.json()["errors"][0]["code"] == "contact_erased"
    assert (Disclosure.objects.count(), LedgerEntry.objects.count()) == before
    again = api_client_for(users["privacy_officer"]).post(f"/api/v1/contacts/{erin.pk}/erase/")
    assert again.status_code == 410


@pytest.mark.django_db
def test_the_person_can_come_back_as_a_new_contact(users, api_client_for):
    erin = _seed_person()
    services.contact_erase(contact=erin, actor=SYSTEM)
    response = api_client_for(users["marketer"]).post("/api/v1/contacts/", {"email": EMAIL})
    assert response.status_code == 201
    assert response.json()["id"] != erin.pk


@pytest.mark.django_db
def test_timeline_entries_stay_but_say_nothing_personal(users, api_client_for):
    erin = _seed_person()
    entries_before = LedgerEntry.objects.filter(contact_id=erin.pk).count()
    services.contact_erase(contact=erin, actor=SYSTEM)
    assert LedgerEntry.objects.filter(contact_id=erin.pk).count() == entries_before + 1
    from contacts.selectors import contact_timeline_entries, timeline_items

    items = timeline_items(users["manager"], list(contact_timeline_entries(erin)))
    text = " ".join(item.summary for item in items)
    _assert_erased_from(text)
    assert "Disclosed budget to sales (value not shown)" in text


@pytest.mark.django_db
def test_subject_access_export_gives_everything_including_withdrawn(users, api_client_for):
    erin = _seed_person()
    response = api_client_for(users["privacy_officer"]).get(f"/api/v1/contacts/{erin.pk}/export/")
    assert response.status_code == 200
    data = response.json()
    assert data["contact"]["email"] == EMAIL
    assert [person["email"] for person in data["merged_contacts"]] == [SECRETS[2]]
    values = {d["value"]: d for d in data["disclosures"]}
    assert set(values) == {SECRETS[0], SECRETS[1]}
    assert values[SECRETS[1]]["withdrawn_at"] is not None
    assert [c["purpose"] for c in data["consents"]] == ["sales_contact"]
    actions = [item["action"] for item in data["record"]]
    assert actions.count("disclosure.record") == 2 and "contact.merge" in actions
    recorded = [item["details"] for item in data["record"] if item["action"] == "disclosure.record"]
    assert {detail["value"] for detail in recorded} == {SECRETS[0], SECRETS[1]}
    assert "BYSTANDER-BUDGET" not in response.content.decode()
    assert LedgerEntry.objects.filter(action="contact.export", contact_id=erin.pk).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["marketer", "sales_rep", "manager", "integration"])
def test_only_the_privacy_officer_erases_or_exports(users, api_client_for, role):
    erin = _seed_person()
    client = api_client_for(users[role])
    assert client.post(f"/api/v1/contacts/{erin.pk}/erase/").status_code == 403
    assert client.get(f"/api/v1/contacts/{erin.pk}/export/").status_code == 403
    erin.refresh_from_db()
    assert erin.erased_at is None and erin.email == EMAIL
