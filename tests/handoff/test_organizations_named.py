"""Organizations a sales rep names on a deal: by domain, else by name in any case, found
through an index whatever the record's size."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.services import organization_get_or_create
from handoff.selectors import organizations_named
from leadrecord.ledger import Actor
from tests.plans import plan_without_scans

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system()


def test_a_name_in_any_case_finds_each_organization_so_named():
    acme, _ = organization_get_or_create(name="Acme Labs", actor=SYSTEM)
    initech, _ = organization_get_or_create(name="Initech", domain="initech.example", actor=SYSTEM)
    assert organizations_named("  ACME labs ") == [acme]
    assert organizations_named("initech.example") == [initech]
    assert organizations_named("initech") == [initech]
    assert organizations_named("Acme") == []
    assert organizations_named("") == []
    assert organizations_named("'; DROP TABLE contacts_organization; --") == []


@pytest.mark.postgres
def test_the_name_is_looked_up_through_an_index():
    organization_get_or_create(name="Acme Labs", actor=SYSTEM)
    with CaptureQueriesContext(connection) as queries:
        organizations_named("acme labs")
    lookup = [query["sql"] for query in queries.captured_queries if "LOWER" in query["sql"]]
    assert len(lookup) == 1
    plan = plan_without_scans(lookup[0])
    assert "organization_name_lower" in plan, plan
