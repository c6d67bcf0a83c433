"""The buyer's say-so tells no role what the person did not tell it (issue 18, findings 1, 2).

A stage is say-so only when the person declared it (source ``self`` or
``form``) and the caller may see it; a caller who may not gets the answer a
person with no say-so gets. A handoff shows its say-so only to those who may
see it, and a marketer or an integration does not know of a handoff whose
say-so is outside its audience. A ready_to_talk told to sales alone is
honoured by the system, which opens the handoff itself.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from contacts.models import Contact, Disclosure
from contacts.services import consent_record, disclosure_record, disclosure_withdraw
from handoff import services
from handoff.models import Handoff, HandoffStatus, RejectReason, Ruleset
from leadrecord.ledger import Actor, ActorKind, ledger_verify
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role
from tests.factories import contact_make

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
RULES = {"name": "r", "points": {"channel:webinar": 10}, "mql_threshold": 20, "sla_hours": 24}
HANDOFFS = "/api/v1/handoffs/"


def activate() -> Ruleset:
    ruleset = services.ruleset_create(actor=SYSTEM, **RULES)  # type: ignore[arg-type]
    return services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)


def stage(contact: Contact, *, audience: str, source: str = "self", value: str = "ready_to_talk"):
    return disclosure_record(
        contact=contact,
        key="journey_stage",
        value=value,
        audience=audience,
        purpose="sales_contact",
        source=source,
        actor=SYSTEM,
    )


def consent(contact: Contact) -> None:
    consent_record(
        contact=contact, purpose="sales_contact", granted=True, source="form", actor=SYSTEM
    )


@pytest.fixture
def api(users: dict[str, Any], api_client_for: Callable[[User], APIClient]) -> Any:
    return lambda role: api_client_for(cast(User, users[role]))


@pytest.fixture
def browser(users: dict[str, Any]) -> Any:
    def make(role: str) -> Client:
        client = Client()
        client.force_login(cast(User, users[role]))
        return client

    return make


def timeline(client: APIClient, contact: Contact) -> dict[str, Any]:
    response = client.get(f"/api/v1/contacts/{contact.pk}/timeline/")
    assert response.status_code == 200
    return cast(dict[str, Any], response.json())


def summaries(body: dict[str, Any]) -> list[str]:
    return [item["summary"] for item in body["results"]]


# --- finding 1: a stage outside the caller's audience -----------------------------


@pytest.mark.parametrize("role", [Role.MARKETER, Role.INTEGRATION])
def test_a_stage_told_to_sales_alone_answers_as_no_say_so_at_all(api, role):
    nobody = contact_make(first_name="Nobody")
    told_sales = contact_make(first_name="Told")
    stage(told_sales, audience="sales")
    activate()  # after the stage: the system has not handed them off; the gate alone answers
    client = api(role)
    before = Handoff.objects.count(), LedgerEntry.objects.count()

    refused = client.post(HANDOFFS, {"contact": told_sales.pk}, format="json")
    baseline = client.post(HANDOFFS, {"contact": nobody.pk}, format="json")

    assert refused.status_code == baseline.status_code == 409
    assert refused.json() == baseline.json()
    assert refused.json()["errors"][0]["code"] == "no_buyer_consent"
    assert "ready_to_talk" not in refused.content.decode()
    assert (Handoff.objects.count(), LedgerEntry.objects.count()) == before


def test_the_handoff_page_answers_a_marketer_as_for_a_person_with_no_say_so(browser):
    nobody = contact_make(first_name="Nobody")
    told_sales = contact_make(first_name="Told")
    stage(told_sales, audience="sales")
    activate()
    client = browser(Role.MARKETER)

    refused = client.post(reverse("handoff-new", args=[told_sales.pk]), {"note": ""})
    baseline = client.post(reverse("handoff-new", args=[nobody.pk]), {"note": ""})

    assert refused.status_code == baseline.status_code == 409
    body = refused.content.decode()
    assert "neither granted sales_contact consent nor said they are ready to talk" in body
    assert not Handoff.objects.exists()


def test_a_stage_the_caller_sees_still_counts(api):
    person = contact_make()
    stage(person, audience="marketing")
    activate()
    response = api(Role.MARKETER).post(HANDOFFS, {"contact": person.pk}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["buyer_signal"] == "stage:ready_to_talk"
    handoff = Handoff.objects.get()
    assert handoff.say_so_audience == "marketing"
    assert handoff.say_so_disclosure == Disclosure.objects.get(key="journey_stage")


def test_only_the_latest_stage_the_caller_sees_counts(api):
    person = contact_make()
    stage(person, audience="marketing")
    # A later stage the marketer cannot see changes nothing in its answer.
    stage(person, audience="sales", value="learning")
    activate()
    response = api(Role.MARKETER).post(HANDOFFS, {"contact": person.pk}, format="json")
    assert response.status_code == 201, response.content
    later = contact_make()
    stage(later, audience="marketing")
    stage(later, audience="marketing", value="comparing")
    refused = api(Role.MARKETER).post(HANDOFFS, {"contact": later.pk}, format="json")
    assert refused.status_code == 409 and refused.json()["errors"][0]["code"] == "no_buyer_consent"


def test_a_sales_rep_does_not_read_a_marketing_only_stage(api, browser):
    person = contact_make(first_name="Mona")
    stage(person, audience="marketing")
    activate()
    created = api(Role.MARKETER).post(HANDOFFS, {"contact": person.pk}, format="json")
    assert created.status_code == 201
    handoff_id = created.json()["id"]
    rep = api(Role.SALES_REP)

    detail = rep.get(f"{HANDOFFS}{handoff_id}/")
    assert detail.status_code == 200
    assert detail.json()["buyer_signal"] is None
    listed = rep.get(HANDOFFS, {"contact": person.pk}).json()
    assert listed["count"] == 1 and listed["results"][0]["buyer_signal"] is None
    rep_timeline = timeline(rep, person)
    assert "stage:ready_to_talk" not in str(rep_timeline)
    assert any("say-so: not shown" in summary for summary in summaries(rep_timeline))

    queue = browser(Role.SALES_REP).get(reverse("handoff-queue")).content.decode()
    assert f'id="handoff-{handoff_id}"' in queue
    assert "Said they are ready to talk" not in queue and "Not shown" in queue
    page = browser(Role.SALES_REP).get(reverse("contact", args=[person.pk])).content.decode()
    assert "stage:ready_to_talk" not in page and "say-so: not shown" in page
    reject_page = browser(Role.SALES_REP).get(reverse("handoff-reject", args=[handoff_id]))
    assert "Said they are ready to talk" not in reject_page.content.decode()

    # Those who may see the stage read it.
    assert api(Role.MARKETER).get(f"{HANDOFFS}{handoff_id}/").json()["buyer_signal"] == (
        "stage:ready_to_talk"
    )
    assert api(Role.MANAGER).get(f"{HANDOFFS}{handoff_id}/").json()["buyer_signal"] == (
        "stage:ready_to_talk"
    )
    assert any(
        "say-so: said they are ready to talk" in summary
        for summary in summaries(timeline(api(Role.MANAGER), person))
    )


def test_an_integration_reads_no_stage_outside_all(api):
    person = contact_make()
    stage(person, audience="marketing")
    activate()
    handoff_id = (
        api(Role.MARKETER).post(HANDOFFS, {"contact": person.pk}, format="json").json()["id"]
    )
    integration = api(Role.INTEGRATION)
    body = timeline(integration, person)
    assert "ready_to_talk" not in str(body)
    assert not any(summary.startswith("Handoff #") for summary in summaries(body))
    # The handoff's say-so is outside its audience: for it, there is no handoff.
    assert integration.get(f"{HANDOFFS}{handoff_id}/").status_code == 404
    assert integration.get(HANDOFFS, {"contact": person.pk}).json()["count"] == 0


def test_a_consent_say_so_is_shown_to_every_reader(api):
    person = contact_make()
    consent(person)
    activate()
    handoff_id = (
        api(Role.MARKETER).post(HANDOFFS, {"contact": person.pk}, format="json").json()["id"]
    )
    for role in (Role.MARKETER, Role.SALES_REP, Role.MANAGER, Role.INTEGRATION):
        detail = api(role).get(f"{HANDOFFS}{handoff_id}/").json()
        assert detail["buyer_signal"] == "consent:sales_contact", role
        assert any(
            "say-so: consented to sales contact" in summary
            for summary in summaries(timeline(api(role), person))
        ), role


def test_a_withdrawn_stage_is_not_shown_on_its_handoff_to_anyone(api):
    person = contact_make()
    disclosure = stage(person, audience="all")
    activate()
    handoff_id = (
        api(Role.MARKETER).post(HANDOFFS, {"contact": person.pk}, format="json").json()["id"]
    )
    disclosure_withdraw(disclosure=disclosure, actor=SYSTEM)
    for role in (Role.MARKETER, Role.SALES_REP, Role.MANAGER):
        assert api(role).get(f"{HANDOFFS}{handoff_id}/").json()["buyer_signal"] is None, role


# --- finding 2: only the person's own word is say-so -------------------------------


@pytest.mark.parametrize("source", ["import", "api", "conversation"])
def test_a_stage_recorded_by_someone_else_is_not_say_so(api, source):
    activate()
    person = contact_make()
    marketer = api(Role.MARKETER)
    recorded = marketer.post(
        f"/api/v1/contacts/{person.pk}/disclosures/",
        {
            "key": "journey_stage",
            "value": "ready_to_talk",
            "audience": "marketing",
            "purpose": "sales_contact",
            "source": source,
        },
        format="json",
    )
    assert recorded.status_code == 201, recorded.content
    response = marketer.post(HANDOFFS, {"contact": person.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "no_buyer_consent"
    assert not Handoff.objects.exists()


@pytest.mark.parametrize("source", ["self", "form"])
def test_a_stage_the_person_declared_is_say_so(api, source):
    activate()
    person = contact_make()
    stage(person, audience="all", source=source)
    response = api(Role.MARKETER).post(HANDOFFS, {"contact": person.pk}, format="json")
    assert response.status_code == 201, response.content


def test_an_imported_stage_does_not_let_the_automatic_handoff_through(api):
    ruleset = services.ruleset_create(
        actor=SYSTEM,
        name="auto",
        points={"disclosure:budget": 30},
        mql_threshold=20,
        sla_hours=24,
        auto_handoff=True,
    )
    services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    person = contact_make()
    stage(person, audience="sales", source="import")
    disclosure_record(
        contact=person,
        key="budget",
        value="50k",
        audience="sales",
        purpose="qualification",
        source="form",
        actor=SYSTEM,
    )
    person.refresh_from_db()
    assert person.qualified
    assert not Handoff.objects.exists()


# --- wrong roles --------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.PRIVACY_OFFICER])
def test_roles_that_do_not_hand_off_get_403_whatever_the_say_so(api, role):
    activate()
    told_sales = contact_make()
    stage(told_sales, audience="sales")
    nobody = contact_make()
    before = Handoff.objects.count(), LedgerEntry.objects.count()
    for person in (told_sales, nobody):
        response = api(role).post(HANDOFFS, {"contact": person.pk}, format="json")
        assert response.status_code == 403
    assert (Handoff.objects.count(), LedgerEntry.objects.count()) == before


def test_a_privacy_officer_reads_no_handoff_and_sees_the_timeline_whole(api, browser):
    activate()
    person = contact_make()
    stage(person, audience="sales")
    officer = api(Role.PRIVACY_OFFICER)
    assert officer.get(HANDOFFS).status_code == 403
    assert any(
        "say-so: said they are ready to talk" in summary
        for summary in summaries(timeline(officer, person))
    )


# --- the system honours a ready_to_talk told to sales alone ------------------------


def system_handoff(contact: Contact) -> Handoff:
    handoff = Handoff.objects.get(contact=contact)
    assert handoff.status == HandoffStatus.PENDING
    assert handoff.automatic and handoff.created_by is None
    assert handoff.say_so_audience == "sales"
    assert handoff.buyer_signal == "stage:ready_to_talk"
    entry = LedgerEntry.objects.get(action="handoff.create", subject_id=str(handoff.pk))
    assert entry.actor_kind == ActorKind.SYSTEM
    after = cast(dict[str, Any], entry.after)
    assert after["say_so_audience"] == "sales"
    assert after["say_so_disclosure"] == handoff.say_so_disclosure_id
    return handoff


def test_the_system_hands_off_a_person_who_told_sales_alone(api):
    activate()
    person = contact_make()
    stage(person, audience="sales")
    system_handoff(person)
    # Told again: still one pending handoff.
    stage(person, audience="sales")
    assert Handoff.objects.filter(contact=person).count() == 1
    assert ledger_verify().ok


def test_the_system_path_runs_from_the_api_and_from_events(api):
    activate()
    by_api = contact_make()
    response = api(Role.SALES_REP).post(
        f"/api/v1/contacts/{by_api.pk}/disclosures/",
        {
            "key": "journey_stage",
            "value": "ready_to_talk",
            "audience": "sales",
            "purpose": "sales_contact",
            "source": "self",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    system_handoff(by_api)

    def event(external_id: str, email: str, **fields: str) -> dict[str, Any]:
        return {
            "type": "disclosure",
            "source_system": "site",
            "external_id": external_id,
            "occurred_at": "2026-10-01T09:06:00Z",
            "contact": {"email": email},
            "key": "journey_stage",
            "value": "ready_to_talk",
            "audience": "sales",
            "purpose": "sales_contact",
            "source": "form",
            **fields,
        }

    events = [
        event("e-1", "told@sales.example"),
        event("e-2", "imported@sales.example", source="import"),
        event("e-3", "shared@sales.example", audience="all"),
        event("e-4", "changed@sales.example"),
        event("e-5", "changed@sales.example", value="learning", occurred_at="2026-10-02T09:00:00Z"),
    ]
    answer = api(Role.INTEGRATION).post("/api/v1/events/", {"events": events}, format="json")
    assert answer.status_code == 200 and answer.json()["created"] == 5, answer.content
    system_handoff(Contact.objects.get(email_key="told@sales.example"))
    # Not the person's word; one marketing sees (marketing acts on it); since changed.
    handed = set(Handoff.objects.values_list("contact__email_key", flat=True))
    assert handed == {by_api.email_key, "told@sales.example"}
    assert ledger_verify().ok


def test_the_system_path_needs_an_active_ruleset_and_a_living_person():
    person = contact_make()
    stage(person, audience="sales")
    assert not Handoff.objects.exists()
    activate()
    # A stage marketing sees is marketing's to hand off; the system leaves it.
    shared = contact_make()
    stage(shared, audience="all")
    stage(contact_make(), audience="marketing")
    assert not Handoff.objects.exists()


def test_a_marketer_knows_nothing_of_the_system_handoff(api, browser):
    activate()
    nobody = contact_make(first_name="Nobody")
    told_sales = contact_make(first_name="Told")
    stage(told_sales, audience="sales")
    handoff = system_handoff(told_sales)
    marketer = api(Role.MARKETER)

    # The same answers as for a person never handed off, and no say-so.
    for person in (told_sales, nobody):
        assert marketer.get(HANDOFFS, {"contact": person.pk}).json()["count"] == 0
    assert marketer.get(HANDOFFS).json()["count"] == 0
    assert marketer.get(f"{HANDOFFS}{handoff.pk}/").status_code == 404
    assert marketer.get(f"{HANDOFFS}{handoff.pk + 1000}/").status_code == 404
    refused = marketer.post(HANDOFFS, {"contact": told_sales.pk}, format="json")
    baseline = marketer.post(HANDOFFS, {"contact": nobody.pk}, format="json")
    assert refused.status_code == baseline.status_code == 409
    assert refused.json() == baseline.json()
    body = timeline(marketer, told_sales)
    assert not any(summary.startswith("Handoff #") for summary in summaries(body))
    assert body["count"] == LedgerEntry.objects.filter(contact_id=told_sales.pk).count() - 1
    page = browser(Role.MARKETER).get(reverse("contact", args=[told_sales.pk])).content.decode()
    assert "Never handed off to sales." in page and f"Handoff #{handoff.pk}" not in page
    assert api(Role.INTEGRATION).get(HANDOFFS).json()["count"] == 0

    # Nor when sales sends it back.
    services.handoff_reject(
        handoff=handoff,
        user=cast(User, User.objects.get(username="the-sales_rep")),
        reason="not_a_fit",
    )
    returned = browser(Role.MARKETER).get(reverse("handoffs-returned")).content.decode()
    assert f'id="handoff-{handoff.pk}"' not in returned
    assert "Nothing has come back from sales." in returned

    # Sales works it like any other, and reads why.
    assert api(Role.SALES_REP).get(f"{HANDOFFS}{handoff.pk}/").json()["buyer_signal"] == (
        "stage:ready_to_talk"
    )


def test_marketing_with_a_say_so_of_its_own_replaces_the_system_handoff(api):
    activate()
    told_sales = contact_make()
    stage(told_sales, audience="sales")
    hidden = system_handoff(told_sales)
    consent(told_sales)
    only_consent = contact_make()
    consent(only_consent)
    marketer = api(Role.MARKETER)

    created = marketer.post(HANDOFFS, {"contact": told_sales.pk}, format="json")
    baseline = marketer.post(HANDOFFS, {"contact": only_consent.pk}, format="json")

    assert created.status_code == baseline.status_code == 201
    assert set(created.json()) == set(baseline.json())
    assert created.json()["buyer_signal"] == baseline.json()["buyer_signal"]
    assert created.json()["status"] == "pending"
    hidden.refresh_from_db()
    assert hidden.status == HandoffStatus.REJECTED and hidden.reason == RejectReason.DUPLICATE
    assert marketer.get(HANDOFFS, {"contact": told_sales.pk}).json()["count"] == 1
    # Sales sees both: the replaced one, and the new one in its queue.
    rep = api(Role.SALES_REP)
    assert rep.get(HANDOFFS, {"contact": told_sales.pk}).json()["count"] == 2
    assert ledger_verify().ok


def test_a_second_marketing_handoff_still_answers_already_open(api):
    activate()
    person = contact_make()
    consent(person)
    marketer = api(Role.MARKETER)
    assert marketer.post(HANDOFFS, {"contact": person.pk}, format="json").status_code == 201
    again = marketer.post(HANDOFFS, {"contact": person.pk}, format="json")
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "handoff_open"


def test_reports_count_the_system_handoff_only_for_those_who_may_know_of_it(api, browser):
    ruleset = services.ruleset_create(
        actor=SYSTEM,
        name="budget qualifies",
        points={"disclosure:budget": 30},
        mql_threshold=20,
        sla_hours=24,
    )
    services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    person = contact_make(first_name="Quinn", last_name="Qualified")
    disclosure_record(
        contact=person,
        key="budget",
        value="50k",
        audience="all",
        purpose="qualification",
        source="form",
        actor=SYSTEM,
    )
    stage(person, audience="sales")
    system_handoff(person)

    def funnel(role: str) -> tuple[dict[str, int], dict[str, int]]:
        body = api(role).get("/api/v1/reports/funnel/").json()
        stages = {stage["key"]: stage["people"] for stage in body["stages"]}
        return stages, {leak["key"]: leak["count"] for leak in body["leakage"]}

    # For a marketer the person was qualified and never handed off, as if the
    # handoff did not exist; for a manager the handoff counts.
    stages, leaks = funnel(Role.MARKETER)
    assert stages["handed_off"] == 0 and leaks["qualified_not_handed_off"] == 1
    stages, leaks = funnel(Role.MANAGER)
    assert stages["handed_off"] == 1 and leaks["qualified_not_handed_off"] == 0
    people = api(Role.MARKETER).get("/api/v1/reports/contribution/").json()["people"]
    assert people["handed_off"] == 0
    listed = browser(Role.MARKETER).get("/reports/lists/qualified-not-handed-off/")
    assert "Quinn" in listed.content.decode()
    listed = browser(Role.MANAGER).get("/reports/lists/qualified-not-handed-off/")
    assert "Quinn" not in listed.content.decode()


def test_a_deal_from_the_system_handoff_is_sales_sourced_and_names_no_handoff(api):
    activate()
    person = contact_make(organization="direct.example")
    stage(person, audience="sales")
    handoff = system_handoff(person)
    rep = cast(User, User.objects.get(username="the-sales_rep"))
    services.handoff_accept(handoff=handoff, user=rep)
    assert person.organization is not None
    deal, _ = services.deal_create(
        name="Direct",
        organization=person.organization,
        members=[services.Member(person, "champion")],
        amount=Decimal("1000"),
        actor=Actor.of(rep),
    )
    assert deal.derived_source == "sales" and deal.sourcing_handoff is None
    detail = api(Role.MARKETER).get(f"/api/v1/deals/{deal.pk}/").json()
    assert f"#{handoff.pk}" not in detail["source_reason"]


def test_a_merge_keeps_the_handoff_marketing_knows_of(api):
    activate()
    told_sales = contact_make()
    stage(told_sales, audience="sales")
    hidden = system_handoff(told_sales)
    other = contact_make()
    consent(other)
    marketer = api(Role.MARKETER)
    visible_id = marketer.post(HANDOFFS, {"contact": other.pk}, format="json").json()["id"]

    merged = marketer.post(
        "/api/v1/contacts/merge/", {"keep": told_sales.pk, "merge": other.pk}, format="json"
    )
    assert merged.status_code == 200, merged.content

    # The marketer's handoff stays pending, as if the kept person had none.
    mine = marketer.get(f"{HANDOFFS}{visible_id}/").json()
    assert mine["status"] == "pending" and mine["contact"] == told_sales.pk
    assert marketer.get(HANDOFFS, {"contact": told_sales.pk}).json()["count"] == 1
    hidden.refresh_from_db()
    assert hidden.status == HandoffStatus.REJECTED and hidden.reason == RejectReason.DUPLICATE
    assert ledger_verify().ok


def test_handoffs_recorded_before_take_their_say_so_audience_from_the_record():
    from importlib import import_module

    from django.apps import apps

    backfill = import_module("handoff.migrations.0002_handoff_say_so_audience").say_so_backfill
    activate()
    by_consent = contact_make()
    consent(by_consent)
    by_stage = contact_make()
    stage(by_stage, audience="marketing")
    unknown = contact_make()
    stage(unknown, audience="all")
    for person in (by_consent, by_stage, unknown):
        services.handoff_create(contact=person, actor=SYSTEM)
    Disclosure.objects.filter(contact=unknown).update(value="learning")  # no stage to find
    Handoff.objects.update(say_so_audience="", say_so_disclosure=None)

    backfill(apps, None)

    audiences = dict(Handoff.objects.values_list("contact_id", "say_so_audience"))
    assert audiences == {by_consent.pk: "all", by_stage.pk: "marketing", unknown.pk: ""}
    assert Handoff.objects.get(contact=by_stage).say_so_disclosure == Disclosure.objects.get(
        contact=by_stage
    )
