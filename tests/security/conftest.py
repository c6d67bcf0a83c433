"""One realistic record per test module for the security tests, rolled back afterwards.

``world`` writes the demo data set (every kind of object, through the services),
one user and API token per role, a finished attribution run, and one person,
``world.person``, whose disclosures carry a distinctive value per audience, so a
test can search any response body for a value its viewer must not see.
Building it takes seconds; it is built once per module inside a transaction
that is rolled back at the end, and each test runs in a savepoint within it.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from knox.models import AuthToken

from buyers import services as buyer_services
from contacts import services as contact_services
from contacts import touch_import
from contacts.models import Audience, Contact
from handoff import services as handoff_services
from handoff.models import Deal, Handoff, HandoffStatus, Ruleset
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from reports.models import AttributionRun
from webhooks import services as webhook_services

# The demo users, one per role (seed_demo's names).
DEMO_USERNAMES = {
    Role.MARKETER: "maria",
    Role.SALES_REP: "sam",
    Role.MANAGER: "morgan",
    Role.PRIVACY_OFFICER: "priya",
    Role.INTEGRATION: "crm-sync",
}

# Values no other data contains, one per audience, and one withdrawn.
SECRET_BY_AUDIENCE = {
    Audience.MARKETING: "zqmarketingsecret4417",
    Audience.SALES: "zqsalessecret8053",
    Audience.ALL: "zqeveryonesecret2290",
}
WITHDRAWN_SECRET = "zqwithdrawnsecret6131"
WORLD_FORM_SLUG = "security-tests-form"

# Who sees which audience: docs/product.md, promise 2 and docs/api.md (integrations: `all` only).
AUDIENCES_BY_ROLE: dict[str, set[str]] = {
    Role.MARKETER: {Audience.MARKETING, Audience.ALL},
    Role.SALES_REP: {Audience.SALES, Audience.ALL},
    Role.MANAGER: {Audience.MARKETING, Audience.SALES, Audience.ALL},
    Role.PRIVACY_OFFICER: {Audience.MARKETING, Audience.SALES, Audience.ALL},
    Role.INTEGRATION: {Audience.ALL},
}


def secrets_hidden_from(role: str | None) -> list[str]:
    """The distinctive values a viewer in ``role`` (None: anonymous) must never be shown."""
    visible = AUDIENCES_BY_ROLE.get(role, set()) if role else set()
    hidden = [value for audience, value in SECRET_BY_AUDIENCE.items() if audience not in visible]
    return [*hidden, WITHDRAWN_SECRET]


@dataclass
class World:
    users: dict[str, User]
    tokens: dict[str, str]
    person: Contact
    other_person: Contact
    handoff: Handoff
    deal: Deal
    draft_ruleset: Ruleset
    run: AttributionRun
    disclosure_id: int
    import_job_id: int
    form_id: int
    webhook_endpoint_id: int
    # Path parameter values by URL pattern, for the matrix.
    samples: dict[str, object] = field(default_factory=dict)


def _world_build() -> World:
    system = Actor.system("security tests")
    call_command("seed_demo", contacts=60, seed=3, stdout=_Discard())
    call_command("recompute_attribution", stdout=_Discard())
    users: dict[str, User] = {
        role: User.objects.get(username=name) for role, name in DEMO_USERNAMES.items()
    }
    tokens: dict[str, str] = {
        role: AuthToken.objects.create(user=user)[1] for role, user in users.items()
    }

    person, _ = contact_services.contact_create(
        email="grace.secretive@security-tests.example",
        first_name="Grace",
        last_name="Secretive",
        title="Chief Security Officer",
        organization=contact_services.OrganizationInput(
            name="Security Tests", domain="security-tests.example"
        ),
        actor=system,
    )
    other_person, _ = contact_services.contact_create(
        email="otto.other@security-tests.example",
        first_name="Otto",
        last_name="Other",
        organization=person.organization,
        actor=system,
    )
    disclosures = {
        audience: contact_services.disclosure_record(
            contact=person,
            key="budget",
            value=value,
            audience=audience,
            purpose="qualification",
            source="conversation",
            actor=system,
        )
        for audience, value in SECRET_BY_AUDIENCE.items()
    }
    withdrawn = contact_services.disclosure_record(
        contact=person,
        key="timeline",
        value=WITHDRAWN_SECRET,
        audience=Audience.ALL,
        purpose="qualification",
        source="conversation",
        actor=system,
    )
    contact_services.disclosure_withdraw(disclosure=withdrawn, actor=system)
    contact_services.consent_record(
        contact=person, purpose="sales_contact", granted=True, source="form", actor=system
    )
    handoff = handoff_services.handoff_create(contact=person, actor=system, note="security tests")
    assert handoff.status == HandoffStatus.PENDING and handoff.owner_id is None
    deal, _ = handoff_services.deal_create(
        name="Security Tests platform",
        organization=person.organization,  # type: ignore[arg-type]
        members=[handoff_services.Member(contact=other_person, role="champion")],
        amount=Decimal("12000.00"),
        actor=system,
    )
    draft = handoff_services.ruleset_create(
        name="Security tests draft",
        points={"channel:webinar": 5},
        mql_threshold=50,
        sla_hours=48,
        actor=system,
    )
    job = touch_import.touch_import_upload(
        file_name="touches.csv",
        raw=b"email,channel,kind,occurred_at\ngrace.secretive@security-tests.example,web,visit,"
        b"2026-01-05T10:00:00+00:00\n",
        user=users[Role.MARKETER],
    )
    run = AttributionRun.objects.order_by("-pk").first()
    assert run is not None
    buyer_form = buyer_services.buyer_form_create(
        slug=WORLD_FORM_SLUG,
        title="Security tests form",
        disclosures=[{"key": "budget", "label": "Budget"}],
        actor=system,
    )
    # Subscribed to an event the calls below never cause: no delivery runs meanwhile.
    webhook_endpoint, _ = webhook_services.endpoint_create(
        url="http://127.0.0.1:9/hooks",
        event_types=["attribution.run_completed"],
        audience="marketing",
        actor=system,
    )
    world = World(
        users=users,
        tokens=tokens,
        person=person,
        other_person=other_person,
        handoff=handoff,
        deal=deal,
        draft_ruleset=draft,
        run=run,
        disclosure_id=disclosures[Audience.ALL].pk,
        import_job_id=job.pk,
        form_id=buyer_form.pk,
        webhook_endpoint_id=webhook_endpoint.pk,
    )
    return world


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[World]:
    with django_db_blocker.unblock(), transaction.atomic():  # type: ignore[attr-defined]
        yield _world_build()
        transaction.set_rollback(True)


def path_sample(path: str, world: World) -> dict[str, object]:
    """Values naming real objects of ``world`` for the parameters in ``path``.

    ``path`` is an OpenAPI template (``/api/v1/deals/{id}/``) or a URL pattern
    (``deals/<id:pk>/``); the object is chosen by the word before the parameter.
    A parameter nothing here can name is left out (the caller decides what that means).
    """
    import re

    by_collection: dict[str, object] = {
        "contacts": world.person.pk,
        "deals": world.deal.pk,
        "organizations": world.deal.organization_id,
        "handoffs": world.handoff.pk,
        "rulesets": world.draft_ruleset.pk,
        "rules": world.draft_ruleset.pk,
        "disclosures": world.disclosure_id,
        "runs": world.run.pk,
        "import": world.import_job_id,
        "channels": "web",
        "forms": world.form_id,
        "f": WORLD_FORM_SLUG,
        "endpoints": world.webhook_endpoint_id,
        "webhooks": world.webhook_endpoint_id,
    }
    values: dict[str, object] = {}
    for match in re.finditer(r"([\w-]+)/(?:\{(\w+)\}|<(?:\w+:)?(\w+)>)", path):
        collection, name = match.group(1), match.group(2) or match.group(3)
        if collection in by_collection:
            values[name] = by_collection[collection]
    return values
