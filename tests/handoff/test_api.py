"""The handoff API's refusals: bad input, wrong roles, wrong states. Always 4xx, nothing written."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Contact
from contacts.services import consent_record, contact_erase
from handoff import services
from handoff.models import (
    ContributionTarget,
    Deal,
    DealContact,
    Handoff,
    HandoffStatus,
    Ruleset,
    RulesetStatus,
    SaleEvent,
)
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role
from tests.factories import UserFactory, contact_make

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
RULES = {"name": "r", "points": {"channel:webinar": 10}, "mql_threshold": 20, "sla_hours": 24}


def written() -> tuple[int, ...]:
    return (
        Ruleset.objects.count(),
        Handoff.objects.count(),
        Deal.objects.count(),
        DealContact.objects.count(),
        SaleEvent.objects.count(),
        ContributionTarget.objects.count(),
        LedgerEntry.objects.count(),
    )


@pytest.fixture
def nothing_written() -> Iterator[None]:
    before = written()
    yield
    assert written() == before


def codes(response: Any) -> set[str]:
    return {error["code"] for error in response.json()["errors"]}


def attrs(response: Any) -> set[str]:
    return {error["attr"] for error in response.json()["errors"]}


@pytest.fixture
def api(users: dict[str, Any], api_client_for: Callable[[User], APIClient]) -> Any:
    return lambda role: api_client_for(cast(User, users[role]))


@pytest.fixture
def active_ruleset() -> Ruleset:
    ruleset = services.ruleset_create(actor=SYSTEM, **RULES)  # type: ignore[arg-type]
    return services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)


def consenting(domain: str = "acme.example") -> Contact:
    contact = contact_make(organization=domain)
    consent_record(
        contact=contact, purpose="sales_contact", granted=True, source="form", actor=SYSTEM
    )
    return contact


@pytest.fixture
def deal(active_ruleset: Ruleset) -> Deal:
    contact = consenting()
    assert contact.organization is not None
    created, _ = services.deal_create(
        name="Acme",
        organization=contact.organization,
        members=[services.Member(contact, "champion")],
        amount=Decimal("1000"),
        actor=SYSTEM,
    )
    return created


# --- rulesets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "n" * 500}, "name"),
        ({"points": "lots"}, "points"),
        ({"points": {"channel:webinar": "ten"}}, "points"),
        ({"points": {"astrology:leo": 5}}, "points"),
        ({"points": {"channel:webinar": 10**12}}, "points"),
        ({"mql_threshold": -1}, "mql_threshold"),
        ({"mql_threshold": "high"}, "mql_threshold"),
        ({"sla_hours": 0}, "sla_hours"),
        ({"sourcing_window_days": -5}, "sourcing_window_days"),
        ({"lookback_days": 0}, "lookback_days"),
    ],
)
def test_bad_rulesets_are_400s_naming_the_field(api, nothing_written, change, field):
    response = api(Role.MANAGER).post("/api/v1/rulesets/", {**RULES, **change}, format="json")
    assert response.status_code == 400, response.content
    assert field in attrs(response)


def test_active_and_retired_rulesets_are_written_in_stone(api, active_ruleset):
    manager = api(Role.MANAGER)
    draft = manager.post("/api/v1/rulesets/", {**RULES, "name": "next"}, format="json").json()
    assert manager.post(f"/api/v1/rulesets/{draft['id']}/activate/").status_code == 200
    active_ruleset.refresh_from_db()
    assert active_ruleset.status == RulesetStatus.RETIRED
    before = written()
    for ruleset_id in (active_ruleset.pk, draft["id"]):
        changed = manager.patch(
            f"/api/v1/rulesets/{ruleset_id}/", {"mql_threshold": 1}, format="json"
        )
        assert changed.status_code == 409
        again = manager.post(f"/api/v1/rulesets/{ruleset_id}/activate/")
        assert again.status_code == 409
    assert written() == before
    assert Ruleset.objects.get(pk=draft["id"]).mql_threshold == RULES["mql_threshold"]


@pytest.mark.parametrize(
    "role", [Role.MARKETER, Role.SALES_REP, Role.PRIVACY_OFFICER, Role.INTEGRATION]
)
def test_only_managers_write_rulesets_and_targets(api, role, nothing_written):
    client = api(role)
    assert client.post("/api/v1/rulesets/", RULES, format="json").status_code == 403
    target = {"period": "2026-Q4", "marketing_pipeline_share": "0.4"}
    assert client.post("/api/v1/targets/", target, format="json").status_code == 403


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.MARKETER, 200),
        (Role.SALES_REP, 200),
        (Role.MANAGER, 200),
        (Role.PRIVACY_OFFICER, 403),
        (Role.INTEGRATION, 403),
    ],
)
def test_who_may_read_rulesets(api, role, expected):
    assert api(role).get("/api/v1/rulesets/").status_code == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"marketing_pipeline_share": "0.4"}, "period"),
        ({"period": "2026-Q5", "marketing_pipeline_share": "0.4"}, "period"),
        ({"period": "Q3 2026", "marketing_pipeline_share": "0.4"}, "period"),
        ({"period": "2026-Q3"}, "marketing_pipeline_share"),
        ({"period": "2026-Q3", "marketing_pipeline_share": "1.5"}, "marketing_pipeline_share"),
        ({"period": "2026-Q3", "marketing_pipeline_share": "-0.1"}, "marketing_pipeline_share"),
        ({"period": "2026-Q3", "marketing_pipeline_share": "half"}, "marketing_pipeline_share"),
    ],
)
def test_bad_targets_are_400s_naming_the_field(api, nothing_written, body, field):
    response = api(Role.MANAGER).post("/api/v1/targets/", body, format="json")
    assert response.status_code == 400
    assert field in attrs(response)


# --- handoffs ----------------------------------------------------------------------


def test_a_handoff_without_an_active_ruleset_or_for_unknown_people_is_refused(api):
    marketer = api(Role.MARKETER)
    contact = consenting()
    before = written()
    no_rules = marketer.post("/api/v1/handoffs/", {"contact": contact.pk}, format="json")
    assert no_rules.status_code == 409 and codes(no_rules) == {"no_active_ruleset"}
    for body in ({}, {"contact": 999_999}, {"contact": "me"}, {"contact": None}):
        response = marketer.post("/api/v1/handoffs/", body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert "contact" in attrs(response)
    assert written() == before


def test_a_handoff_for_an_erased_person_is_refused(api, users, active_ruleset):
    contact = consenting()
    contact_erase(contact=contact, actor=Actor.of(users[Role.PRIVACY_OFFICER]))
    before = written()
    response = api(Role.MARKETER).post("/api/v1/handoffs/", {"contact": contact.pk}, format="json")
    assert response.status_code in (400, 404, 409)
    assert written() == before


def test_an_oversized_note_is_a_400(api, active_ruleset):
    contact = consenting()
    before = written()
    response = api(Role.MARKETER).post(
        "/api/v1/handoffs/", {"contact": contact.pk, "note": "x" * 100_000}, format="json"
    )
    assert response.status_code == 400
    assert "note" in attrs(response)
    assert written() == before


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.MARKETER, 201),
        (Role.MANAGER, 201),
        (Role.INTEGRATION, 201),
        (Role.SALES_REP, 403),
        (Role.PRIVACY_OFFICER, 403),
    ],
)
def test_who_may_hand_off(api, active_ruleset, role, expected):
    contact = consenting()
    response = api(role).post("/api/v1/handoffs/", {"contact": contact.pk}, format="json")
    assert response.status_code == expected


@pytest.mark.parametrize("role", [Role.MARKETER, Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_only_sales_decides_handoffs(api, active_ruleset, role):
    handoff = services.handoff_create(contact=consenting(), actor=SYSTEM)
    before = written()
    client = api(role)
    assert client.post(f"/api/v1/handoffs/{handoff.pk}/accept/").status_code == 403
    rejected = client.post(
        f"/api/v1/handoffs/{handoff.pk}/reject/", {"reason": "other"}, format="json"
    )
    assert rejected.status_code == 403
    assert written() == before


def test_a_handoff_assigned_to_another_rep_is_not_yours(api, users, active_ruleset):
    other = cast(User, UserFactory(role=Role.SALES_REP))
    handoff = services.handoff_create(contact=consenting(), actor=SYSTEM, assigned_to=other)
    before = written()
    response = api(Role.SALES_REP).post(f"/api/v1/handoffs/{handoff.pk}/accept/")
    assert response.status_code == 403 and codes(response) == {"not_your_handoff"}
    assert written() == before
    # A manager may decide any handoff.
    assert api(Role.MANAGER).post(f"/api/v1/handoffs/{handoff.pk}/accept/").status_code == 200


def test_a_handoff_past_its_sla_can_still_be_accepted_and_is_recorded_late(api, active_ruleset):
    handoff = services.handoff_create(
        contact=consenting(), actor=SYSTEM, occurred_at=timezone.now() - timedelta(hours=30)
    )
    response = api(Role.SALES_REP).post(f"/api/v1/handoffs/{handoff.pk}/accept/")
    assert response.status_code == 200
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.ACCEPTED
    entry = LedgerEntry.objects.filter(subject_type="handoff", subject_id=str(handoff.pk)).latest(
        "seq"
    )
    after = entry.after or {}
    assert after["late"] is True and after["late_by_seconds"] > 0
    # Once the SLA job has expired a handoff, it is marketing's again.
    expired = services.handoff_create(
        contact=consenting("late.example"),
        actor=SYSTEM,
        occurred_at=timezone.now() - timedelta(hours=30),
    )
    services.handoffs_expire_due()
    before = written()
    response = api(Role.SALES_REP).post(f"/api/v1/handoffs/{expired.pk}/accept/")
    assert response.status_code == 409 and codes(response) == {"handoff_not_pending"}
    assert written() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": "smells_funny"}, "reason"),
        ({"reason": "other", "note": "n" * 100_000}, "note"),
    ],
)
def test_bad_rejections_are_400s(api, active_ruleset, body, field):
    handoff = services.handoff_create(contact=consenting(), actor=SYSTEM)
    before = written()
    response = api(Role.SALES_REP).post(
        f"/api/v1/handoffs/{handoff.pk}/reject/", body, format="json"
    )
    assert response.status_code == 400
    assert field in attrs(response)
    assert written() == before


def test_deciding_a_decided_handoff_is_a_409(api, active_ruleset):
    handoff = services.handoff_create(contact=consenting(), actor=SYSTEM)
    rep = api(Role.SALES_REP)
    reject = {"reason": "bad_timing", "note": "Next year"}
    assert rep.post(f"/api/v1/handoffs/{handoff.pk}/reject/", reject, format="json").status_code
    before = written()
    assert rep.post(f"/api/v1/handoffs/{handoff.pk}/accept/").status_code == 409
    again = rep.post(f"/api/v1/handoffs/{handoff.pk}/reject/", reject, format="json")
    assert again.status_code == 409 and codes(again) == {"handoff_not_pending"}
    assert written() == before
    assert rep.post("/api/v1/handoffs/999999/accept/").status_code == 404


# --- deals and sale events -----------------------------------------------------------


def deal_body(contact: Contact, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Acme platform",
        "organization": contact.organization_id,
        "contacts": [{"contact": contact.pk, "role": "champion"}],
        "amount": "5000.00",
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "-1"}, "amount"),
        ({"amount": "a lot"}, "amount"),
        ({"amount": "1e30"}, "amount"),
        ({"amount": None}, "amount"),
        ({"currency": "EUR"}, "currency"),
        ({"name": ""}, "name"),
        ({"name": "n" * 1000}, "name"),
        ({"organization": 999_999}, "organization"),
        ({"contacts": [{"contact": 999_999, "role": "champion"}]}, "contacts"),
        ({"contacts": [{"contact": "x", "role": "champion"}]}, "contacts"),
        ({"contacts": "everyone"}, "contacts"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": "2026-01-01T00:00"}, "occurred_at"),
    ],
)
def test_bad_deals_are_400s_naming_the_field(api, active_ruleset, overrides, field):
    contact = consenting()
    before = written()
    response = api(Role.SALES_REP).post(
        "/api/v1/deals/", deal_body(contact, **overrides), format="json"
    )
    assert response.status_code == 400, response.content
    assert any(attr.startswith(field) for attr in attrs(response)), response.json()
    assert written() == before


def test_a_bad_role_in_the_buying_group_is_a_400(api, active_ruleset):
    contact = consenting()
    before = written()
    response = api(Role.SALES_REP).post(
        "/api/v1/deals/",
        deal_body(contact, contacts=[{"contact": contact.pk, "role": "puppet_master"}]),
        format="json",
    )
    assert response.status_code == 400
    assert any(attr.startswith("contacts") for attr in attrs(response))
    assert written() == before


def test_members_of_another_organization_are_allowed_but_flagged(api, active_ruleset):
    contact = consenting("acme.example")
    outsider = consenting("consultants.example")
    response = api(Role.SALES_REP).post(
        "/api/v1/deals/",
        deal_body(
            contact,
            contacts=[
                {"contact": contact.pk, "role": "champion"},
                {"contact": outsider.pk, "role": "influencer"},
            ],
        ),
        format="json",
    )
    assert response.status_code == 201
    flags = {row["contact"]: row["other_organization"] for row in response.json()["contacts"]}
    assert flags == {contact.pk: False, outsider.pk: True}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.SALES_REP, 201),
        (Role.MANAGER, 201),
        (Role.INTEGRATION, 201),
        (Role.MARKETER, 403),
        (Role.PRIVACY_OFFICER, 403),
    ],
)
def test_who_may_create_deals(api, active_ruleset, role, expected):
    response = api(role).post("/api/v1/deals/", deal_body(consenting()), format="json")
    assert response.status_code == expected


def test_sale_event_refusals(api, deal):
    rep = api(Role.SALES_REP)
    url = f"/api/v1/deals/{deal.pk}/sale-events/"
    before = written()
    cases = [
        ({"kind": "won"}, 400, "amount"),
        ({"kind": "won", "amount": "-5"}, 400, "amount"),
        ({"kind": "won", "amount": "ten"}, 400, "amount"),
        ({"kind": "refund", "amount": "5"}, 400, "kind"),
        ({"kind": "won", "amount": "5", "currency": "GBP"}, 400, "currency"),
        ({"kind": "expansion", "amount": "5"}, 409, None),  # not won yet
        ({"kind": "churn", "amount": "5"}, 409, None),
        (
            {
                "kind": "won",
                "amount": "5",
                "occurred_at": (deal.occurred_at - timedelta(days=1)).isoformat(),
            },
            400,
            "occurred_at",
        ),
    ]
    for body, status, field in cases:
        response = rep.post(url, body, format="json")
        assert response.status_code == status, (body, response.content)
        if field:
            assert field in attrs(response), (body, response.json())
    assert written() == before
    assert rep.post(url, {"kind": "won", "amount": "1000"}, format="json").status_code == 201
    twice = rep.post(url, {"kind": "won", "amount": "1000"}, format="json")
    assert twice.status_code == 409 and codes(twice) == {"already_won"}
    lost = rep.post(url, {"kind": "lost"}, format="json")
    assert lost.status_code == 409
    assert SaleEvent.objects.filter(deal=deal).count() == 1


@pytest.mark.parametrize("role", [Role.MARKETER, Role.PRIVACY_OFFICER])
def test_wrong_roles_record_no_sales(api, deal, role, nothing_written):
    response = api(role).post(
        f"/api/v1/deals/{deal.pk}/sale-events/", {"kind": "won", "amount": "1"}, format="json"
    )
    assert response.status_code == 403


def test_overrides_need_a_reason_and_a_manager_or_rep(api, deal):
    url = f"/api/v1/deals/{deal.pk}/override-source/"
    before = written()
    assert (
        api(Role.INTEGRATION)
        .post(url, {"source": "marketing", "reason": "r"}, format="json")
        .status_code
        == 403
    )
    assert (
        api(Role.MARKETER)
        .post(url, {"source": "marketing", "reason": "r"}, format="json")
        .status_code
        == 403
    )
    for body, field in (
        ({"source": "marketing"}, "reason"),
        ({"source": "marketing", "reason": ""}, "reason"),
        ({"source": "aliens", "reason": "r"}, "source"),
        ({"source": "marketing", "reason": "r" * 100_000}, "reason"),
    ):
        response = api(Role.MANAGER).post(url, body, format="json")
        assert response.status_code == 400 and field in attrs(response), body
    assert written() == before
    done = api(Role.MANAGER).post(
        url, {"source": "marketing", "reason": "Booth conversation at the expo"}, format="json"
    )
    assert done.status_code == 200
    assert done.json()["source"] == "marketing"
    assert LedgerEntry.objects.filter(action="deal.override_source").count() == 1


def test_anonymous_callers_get_401(client):
    for url in ("/api/v1/rulesets/", "/api/v1/handoffs/", "/api/v1/deals/", "/api/v1/targets/"):
        assert client.get(url).status_code == 401


# Found by the schema fuzzer: a decimal or a number past a bigint in an id filter
# reached the database and came back as a 500.
@pytest.mark.parametrize("value", ["-6.08e+48", "1.5", "99999999999999999999999", "0"])
@pytest.mark.parametrize(
    ("path", "name"), [("/api/v1/deals/", "organization"), ("/api/v1/handoffs/", "contact")]
)
def test_id_filters_take_only_ids(api, path, name, value):
    response = api(Role.MANAGER).get(path, {name: value})
    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == [name]
