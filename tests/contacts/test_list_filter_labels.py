"""The contact list's filters read well on the page, whatever else built their fields first."""

import re

import pytest
from django.test import Client

from contacts.apis import ContactFilter
from leadrecord.roles import Role

pytestmark = pytest.mark.django_db


def _select(page: str, name: str) -> str:
    match = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert match, name
    return match.group(1)


def test_the_contact_list_keeps_its_page_labels_after_the_api_schema_is_built(users):
    # The schema's generation builds the API filters' form fields, which filters keep.
    for name in ("qualified", "stage", "organization"):
        assert ContactFilter.base_filters[name].field is not None
    client = Client()
    client.force_login(users[Role.MANAGER])
    assert client.get("/api/v1/schema/").status_code == 200
    page = client.get("/contacts/").content.decode()
    qualified = _select(page, "qualified")
    assert re.search(r'<option value=""[^>]*>Any</option>', qualified), qualified
    assert ">Yes</option>" in qualified and ">true</option>" not in qualified
    assert ">Any stage</option>" in _select(page, "stage")
    assert ">Any organization</option>" in _select(page, "organization")
    # Not filtered by default: nobody is qualified here, and the unfiltered list is empty
    # rather than refused.
    assert client.get("/contacts/", {"qualified": ""}).status_code == 200
