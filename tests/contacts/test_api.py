"""The contacts API as docs/api.md states it: create, dedupe, detail, consents, merge."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from contacts.models import Consent, Contact, Disclosure, Organization
from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry

from ..factories import contact_make

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, ...]:
    return (
        Contact.objects.count(),
        Organization.objects.count(),
        Consent.objects.count(),
        Disclosure.objects.count(),
        LedgerEntry.objects.count(),
    )


def error_attrs(response: Any) -> set[str]:
    return {error["attr"] for error in response.json()["errors"]}


@pytest.fixture
def marketer_api(users, api_client_for):
    return api_client_for(users["marketer"])


# --- create and dedupe -----------------------------------------------------------


def test_create_contact_with_organization_is_on_the_record(marketer_api):
    response = marketer_api.post(
        "/api/v1/contacts/",
        {
            "email": "grace@navy.example",
            "first_name": "Grace",
            "last_name": "Hopper",
            "title": "Rear Admiral",
            "organization": {"name": "US Navy", "domain": "Navy.Example"},
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "grace@navy.example"
    assert body["organization"]["domain"] == "navy.example"
    assert body["journey_stage"] is None and body["qualified"] is False
    assert {consent["purpose"] for consent in body["consents"]} == {
        "analytics",
        "marketing_email",
        "sales_contact",
    }
    actions = list(LedgerEntry.objects.values_list("action", flat=True))
    assert actions[-2:] == ["organization.create", "contact.create"]
    entry = LedgerEntry.objects.get(action="contact.create")
    assert entry.contact_id == body["id"] and entry.actor_label == "the-marketer"
    # The person's email is sealed in the ledger, never stored there in clear.
    assert "grace" not in str(entry.after).lower()
    assert ledger_verify().ok


def test_known_email_answers_200_with_existing_contact_and_writes_nothing(marketer_api):
    first = marketer_api.post("/api/v1/contacts/", {"email": "Linus@Kernel.example"})
    before = counts()
    again = marketer_api.post(
        "/api/v1/contacts/", {"email": "  linus@KERNEL.example ", "first_name": "Other"}
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["first_name"] == ""
    assert counts() == before


def test_organization_is_matched_by_domain(marketer_api):
    marketer_api.post(
        "/api/v1/contacts/", {"email": "a@acme.example", "organization": {"domain": "acme.example"}}
    )
    marketer_api.post(
        "/api/v1/contacts/",
        {"email": "b@acme.example", "organization": {"name": "ACME", "domain": "www.ACME.example"}},
    )
    assert Organization.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@" + "b" * 250 + ".com"}, "email"),
        ({"email": ["a@b.example"]}, "email"),
        ({"email": "a@b.example", "first_name": "x" * 151}, "first_name"),
        ({"email": "a@b.example", "title": "t" * 201}, "title"),
        ({"email": "a@b.example", "first_name": "nul\x00byte"}, "first_name"),
        (
            {"email": "a@b.example", "organization": {"domain": "not a domain"}},
            "organization.domain",
        ),
        ({"email": "a@b.example", "organization": {}}, "organization.non_field_errors"),
        ({"email": "a@b.example", "organization": "acme"}, "organization.non_field_errors"),
        ({"email": "a@b.example", "occurred_at": "2026-01-01T10:00:00"}, "occurred_at"),
        ({"email": "a@b.example", "occurred_at": "yesterday"}, "occurred_at"),
    ],
)
def test_bad_contact_input_is_a_400_naming_the_field_and_writes_nothing(marketer_api, body, attr):
    before = counts()
    response = marketer_api.post("/api/v1/contacts/", body)
    assert response.status_code == 400, response.content
    assert response.json()["type"] == "validation_error"
    assert attr in error_attrs(response)
    assert counts() == before


def test_future_occurred_at_is_refused(marketer_api):
    future = (timezone.now() + timedelta(days=1)).isoformat()
    response = marketer_api.post(
        "/api/v1/contacts/", {"email": "a@b.example", "occurred_at": future}
    )
    assert response.status_code == 400
    assert error_attrs(response) == {"occurred_at"}


def test_back_filled_contact_keeps_both_times(marketer_api):
    response = marketer_api.post(
        "/api/v1/contacts/", {"email": "old@b.example", "occurred_at": "2025-03-01T09:00:00+02:00"}
    )
    assert response.status_code == 201
    entry = LedgerEntry.objects.get(action="contact.create")
    assert entry.occurred_at.isoformat() == "2025-03-01T07:00:00+00:00"
    assert entry.recorded_at > entry.occurred_at


def test_non_json_body_is_refused(marketer_api):
    response = marketer_api.generic(
        "POST", "/api/v1/contacts/", "email=a@b.example", "application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    malformed = marketer_api.generic("POST", "/api/v1/contacts/", "{not json", "application/json")
    assert malformed.status_code == 400


# --- list, search, filters ----------------------------------------------------


def test_list_search_and_filters(marketer_api, disclose):
    ada = contact_make(
        email="ada@analytical.example", first_name="Ada", organization="analytical.example"
    )
    bob = contact_make(
        email="bob@builders.example", first_name="Bob", organization="builders.example"
    )
    disclose(ada, key="journey_stage", value="comparing", audience="all")
    disclose(bob, key="journey_stage", value="ready_to_talk", audience="marketing")
    assert marketer_api.get("/api/v1/contacts/").json()["count"] == 2
    found = marketer_api.get("/api/v1/contacts/", {"search": "analytical"}).json()
    assert [row["id"] for row in found["results"]] == [ada.pk]
    by_org = marketer_api.get("/api/v1/contacts/", {"organization": bob.organization_id}).json()
    assert [row["id"] for row in by_org["results"]] == [bob.pk]
    by_stage = marketer_api.get("/api/v1/contacts/", {"stage": "ready_to_talk"}).json()
    assert [row["id"] for row in by_stage["results"]] == [bob.pk]
    assert by_stage["results"][0]["journey_stage"] == "ready_to_talk"
    assert marketer_api.get("/api/v1/contacts/", {"qualified": "true"}).json()["count"] == 0


def test_stage_filter_only_uses_stages_the_caller_may_see(users, api_client_for, disclose):
    hidden = contact_make(email="quiet@b.example")
    disclose(hidden, key="journey_stage", value="ready_to_talk", audience="sales")
    marketer = api_client_for(users["marketer"])
    sales = api_client_for(users["sales_rep"])
    assert marketer.get("/api/v1/contacts/", {"stage": "ready_to_talk"}).json()["count"] == 0
    assert marketer.get(f"/api/v1/contacts/{hidden.pk}/").json()["journey_stage"] is None
    assert sales.get("/api/v1/contacts/", {"stage": "ready_to_talk"}).json()["count"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"stage": "eager"},
        {"organization": "abc"},
        {"organization": "999999"},
        {"qualified": "maybe"},
    ],
)
def test_bad_filters_are_a_400(marketer_api, params):
    response = marketer_api.get("/api/v1/contacts/", params)
    assert response.status_code == 400


def test_list_is_paginated(marketer_api):
    for n in range(3):
        contact_make(email=f"p{n}@b.example")
    page = marketer_api.get("/api/v1/contacts/", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


def test_unknown_and_oversized_ids_are_404(marketer_api):
    assert marketer_api.get("/api/v1/contacts/999999/").status_code == 404
    assert marketer_api.get("/api/v1/contacts/" + "9" * 30 + "/").status_code == 404
    assert marketer_api.get("/api/v1/contacts/9223372036854775807/").status_code == 404


# --- consents -------------------------------------------------------------------


def test_consent_history_is_kept_and_current_state_derived(marketer_api, contact):
    url = f"/api/v1/contacts/{contact.pk}/consents/"
    granted = marketer_api.post(
        url,
        {
            "purpose": "sales_contact",
            "granted": True,
            "source": "pricing form",
            "notice_version": "2026-01",
            "occurred_at": "2026-02-01T10:00:00Z",
        },
    )
    assert granted.status_code == 201
    assert granted.json()["notice_version"] == "2026-01"
    withdrawn = marketer_api.post(
        url, {"purpose": "sales_contact", "granted": False, "source": "email"}
    )
    assert withdrawn.status_code == 201
    history = marketer_api.get(url).json()
    assert [row["granted"] for row in history["results"]] == [True, False]
    detail = marketer_api.get(f"/api/v1/contacts/{contact.pk}/").json()
    state = {consent["purpose"]: consent for consent in detail["consents"]}
    assert state["sales_contact"]["granted"] is False
    assert LedgerEntry.objects.filter(action="consent.record", contact_id=contact.pk).count() == 2


def test_back_filled_grant_does_not_override_a_later_withdrawal(marketer_api, contact):
    url = f"/api/v1/contacts/{contact.pk}/consents/"
    marketer_api.post(url, {"purpose": "analytics", "granted": False, "source": "banner"})
    marketer_api.post(
        url,
        {
            "purpose": "analytics",
            "granted": True,
            "source": "old import",
            "occurred_at": "2025-01-01T00:00:00Z",
        },
    )
    detail = marketer_api.get(f"/api/v1/contacts/{contact.pk}/").json()
    state = {consent["purpose"]: consent["granted"] for consent in detail["consents"]}
    assert state["analytics"] is False


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"granted": True, "source": "x"}, "purpose"),
        ({"purpose": "telepathy", "granted": True, "source": "x"}, "purpose"),
        ({"purpose": "analytics", "source": "x"}, "granted"),
        ({"purpose": "analytics", "granted": "perhaps", "source": "x"}, "granted"),
        ({"purpose": "analytics", "granted": True}, "source"),
        ({"purpose": "analytics", "granted": True, "source": "s" * 201}, "source"),
        (
            {"purpose": "analytics", "granted": True, "source": "x", "notice_version": "v" * 65},
            "notice_version",
        ),
    ],
)
def test_bad_consent_is_a_400(marketer_api, contact, body, attr):
    before = counts()
    response = marketer_api.post(f"/api/v1/contacts/{contact.pk}/consents/", body)
    assert response.status_code == 400
    assert attr in error_attrs(response)
    assert counts() == before


# --- disclosures ------------------------------------------------------------------


def test_disclosure_is_created_and_sealed_in_the_ledger(marketer_api, contact):
    response = marketer_api.post(
        f"/api/v1/contacts/{contact.pk}/disclosures/",
        {
            "key": "budget",
            "value": "EUR 40k this year",
            "audience": "marketing",
            "purpose": "qualification",
            "source": "conversation",
            "expires_at": "2030-01-01T00:00:00Z",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"] and body["value"] == "EUR 40k this year" and body["contact"] == contact.pk
    after = LedgerEntry.objects.get(action="disclosure.record").after
    assert after is not None
    assert after["audience"] == "marketing" and after["key"] == "budget"
    assert "40k" not in str(after)


def test_journey_stage_takes_only_the_three_stages(marketer_api, contact):
    url = f"/api/v1/contacts/{contact.pk}/disclosures/"
    base = {"key": "journey_stage", "audience": "all", "purpose": "sales_contact", "source": "self"}
    assert marketer_api.post(url, {**base, "value": "ready_to_talk"}).status_code == 201
    before = counts()
    bad = marketer_api.post(url, {**base, "value": "desperate"})
    assert bad.status_code == 400 and error_attrs(bad) == {"value"}
    assert counts() == before
    assert (
        marketer_api.get(f"/api/v1/contacts/{contact.pk}/").json()["journey_stage"]
        == "ready_to_talk"
    )


@pytest.mark.parametrize(
    ("change", "attr"),
    [
        ({"key": None}, "key"),
        ({"key": "Budget!"}, "key"),
        ({"key": "k" * 65}, "key"),
        ({"value": ""}, "value"),
        ({"value": "v" * 2001}, "value"),
        ({"audience": "everyone"}, "audience"),
        ({"audience": None}, "audience"),
        ({"purpose": "curiosity"}, "purpose"),
        ({"source": "rumour"}, "source"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_bad_disclosure_is_a_400_and_writes_nothing(marketer_api, contact, change, attr):
    body = {
        "key": "budget",
        "value": "50k",
        "audience": "all",
        "purpose": "qualification",
        "source": "form",
    }
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    before = counts()
    response = marketer_api.post(f"/api/v1/contacts/{contact.pk}/disclosures/", body)
    assert response.status_code == 400, response.content
    assert attr in error_attrs(response)
    assert counts() == before


def test_withdrawn_disclosure_is_hidden_from_everyone(users, api_client_for, contact, disclose):
    disclosure = disclose(contact, audience="all", value="WITHDRAWN-VALUE")
    marketer = api_client_for(users["marketer"])
    response = marketer.post(f"/api/v1/disclosures/{disclosure.pk}/withdraw/")
    assert response.status_code == 200
    assert response.json()["withdrawn_at"]
    assert "WITHDRAWN-VALUE" not in response.content.decode()
    for role in ("marketer", "sales_rep", "manager", "privacy_officer", "integration"):
        client = api_client_for(users[role])
        body = client.get(f"/api/v1/contacts/{contact.pk}/").content.decode()
        body += client.get(f"/api/v1/contacts/{contact.pk}/timeline/").content.decode()
        body += client.get(f"/api/v1/contacts/{contact.pk}/disclosures/").content.decode()
        assert "WITHDRAWN-VALUE" not in body, role
    again = marketer.post(f"/api/v1/disclosures/{disclosure.pk}/withdraw/")
    assert again.status_code == 404


def test_withdrawing_a_disclosure_outside_ones_audience_is_404(
    users, api_client_for, contact, disclose
):
    disclosure = disclose(contact, audience="sales")
    response = api_client_for(users["marketer"]).post(
        f"/api/v1/disclosures/{disclosure.pk}/withdraw/"
    )
    assert response.status_code == 404
    disclosure.refresh_from_db()
    assert disclosure.withdrawn_at is None


def test_expired_disclosure_is_hidden(marketer_api, contact, disclose):
    disclose(
        contact,
        value="EXPIRED-VALUE",
        occurred_at=timezone.now() - timedelta(days=10),
        expires_at=timezone.now() - timedelta(days=1),
    )
    body = marketer_api.get(f"/api/v1/contacts/{contact.pk}/").content.decode()
    body += marketer_api.get(f"/api/v1/contacts/{contact.pk}/timeline/").content.decode()
    assert "EXPIRED-VALUE" not in body


# --- merge ---------------------------------------------------------------------------


def test_merge_moves_consents_and_disclosures_and_keeps_the_email(marketer_api, contact, disclose):
    other = contact_make(email="ada.work@example.com")
    disclose(other, value="from the other record", audience="marketing")
    marketer_api.post(
        f"/api/v1/contacts/{other.pk}/consents/",
        {"purpose": "marketing_email", "granted": True, "source": "newsletter"},
    )
    response = marketer_api.post("/api/v1/contacts/merge/", {"keep": contact.pk, "merge": other.pk})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == contact.pk
    assert [d["value"] for d in body["disclosures"]] == ["from the other record"]
    assert {c["purpose"]: c["granted"] for c in body["consents"]}["marketing_email"] is True
    other.refresh_from_db()
    assert other.merged_into_id == contact.pk
    # The merged email still finds the person; the merged id says where it went.
    again = marketer_api.post("/api/v1/contacts/", {"email": "ADA.WORK@example.com"})
    assert again.status_code == 200 and again.json()["id"] == contact.pk
    gone = marketer_api.get(f"/api/v1/contacts/{other.pk}/")
    assert gone.status_code == 404 and str(contact.pk) in gone.json()["errors"][0]["detail"]
    timeline = marketer_api.get(f"/api/v1/contacts/{contact.pk}/timeline/").json()["results"]
    assert "disclosure.record" in [item["action"] for item in timeline]
    assert timeline[-1]["action"] == "contact.merge"
    assert LedgerEntry.objects.filter(action="contact.merge").count() == 2
    assert ledger_verify().ok


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"keep": 1, "merge": 1}, "merge"),
        ({"keep": 1}, "merge"),
        ({"keep": "x", "merge": 2}, "keep"),
        ({"keep": 1, "merge": 999999}, "merge"),
        ({"keep": 1, "merge": 2**70}, "merge"),
    ],
)
def test_bad_merge_is_a_400_and_changes_nothing(marketer_api, body, attr):
    first = contact_make(email="one@b.example")
    second = contact_make(email="two@b.example")
    ids = {1: first.pk, 2: second.pk}
    body = {k: ids.get(v, v) if isinstance(v, int) else v for k, v in body.items()}
    before = counts()
    response = marketer_api.post("/api/v1/contacts/merge/", body)
    assert response.status_code == 400
    assert attr in error_attrs(response)
    assert counts() == before


def test_merging_an_already_merged_contact_is_refused(marketer_api):
    first = contact_make(email="one@b.example")
    second = contact_make(email="two@b.example")
    third = contact_make(email="three@b.example")
    assert (
        marketer_api.post(
            "/api/v1/contacts/merge/", {"keep": first.pk, "merge": second.pk}
        ).status_code
        == 200
    )
    again = marketer_api.post("/api/v1/contacts/merge/", {"keep": third.pk, "merge": second.pk})
    assert again.status_code == 400 and error_attrs(again) == {"merge"}


# --- who may call what -------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "read", "write", "merge", "erase"),
    [
        ("marketer", 200, 201, 200, 403),
        ("sales_rep", 200, 201, 200, 403),
        ("manager", 200, 201, 200, 403),
        ("privacy_officer", 200, 403, 403, 200),
        ("integration", 200, 201, 403, 403),
    ],
)
def test_roles(users, api_client_for, role, read, write, merge, erase):
    client = api_client_for(users[role])
    keep = contact_make(email="keep@b.example")
    other = contact_make(email="other@b.example")
    assert client.get(f"/api/v1/contacts/{keep.pk}/").status_code == read
    assert client.get(f"/api/v1/contacts/{keep.pk}/timeline/").status_code == read
    assert client.post("/api/v1/contacts/", {"email": f"{role}@new.example"}).status_code == write
    consent = {"purpose": "analytics", "granted": True, "source": "x"}
    assert client.post(f"/api/v1/contacts/{keep.pk}/consents/", consent).status_code == write
    assert (
        client.post("/api/v1/contacts/merge/", {"keep": keep.pk, "merge": other.pk}).status_code
        == merge
    )
    target = keep if merge != 200 else Contact.objects.get(pk=keep.pk)
    assert client.get(f"/api/v1/contacts/{target.pk}/export/").status_code == erase
    assert client.post(f"/api/v1/contacts/{target.pk}/erase/").status_code == erase


def test_anonymous_gets_401(client, contact):
    assert client.get("/api/v1/contacts/").status_code == 401
    assert client.get(f"/api/v1/contacts/{contact.pk}/").status_code == 401
    assert client.post("/api/v1/contacts/", {"email": "a@b.example"}).status_code == 401


def test_integration_sees_only_all_audience_disclosures(users, api_client_for, contact, disclose):
    disclose(contact, audience="all", value="EVERYONE")
    disclose(contact, audience="marketing", value="MARKETING-ONLY")
    disclose(contact, audience="sales", value="SALES-ONLY")
    body = api_client_for(users["integration"]).get(f"/api/v1/contacts/{contact.pk}/").json()
    assert [d["value"] for d in body["disclosures"]] == ["EVERYONE"]
