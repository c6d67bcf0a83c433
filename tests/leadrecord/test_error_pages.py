"""Pages a person lands on by mistake say what happened and lead on; the API keeps its JSON."""

from typing import cast

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from leadrecord.roles import Role

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def _client(role: str) -> Client:
    client = Client()
    client.force_login(cast(User, UserFactory(role=role)))
    return client


@pytest.mark.parametrize(
    ("role", "url"),
    [
        (Role.MANAGER, "/reports/attribution/recompute/"),
        (Role.SALES_REP, "/handoffs/1/accept/"),
        (Role.MANAGER, "/deals/1/sale-events/"),
        (Role.MARKETER, "/touches/import/1/start/"),
    ],
)
def test_a_visit_to_a_form_only_address_gets_a_page_that_says_so(role, url):
    response = _client(role).get(url)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    body = response.content.decode()
    assert "This address is not a page" in body and "(POST)" in body
    assert f'href="{reverse("home")}"' in body
    assert 'id="main"' in body  # the site's own layout, with its menu


def test_the_api_keeps_its_json_405(users, api_client_for):
    response = api_client_for(users[Role.MANAGER]).get("/api/v1/rulesets/1/activate/")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")


def test_an_unknown_page_is_a_friendly_404_and_an_unknown_api_path_is_json():
    client = _client(Role.MARKETER)
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert "There is nothing at this address" in page.content.decode()
    api = client.get("/api/v1/no-such-thing/")
    assert api.status_code == 404 and api["Content-Type"].startswith("application/json")


def test_a_405_from_a_page_that_wrote_its_own_body_is_left_alone(rf):
    from django.http import HttpResponseNotAllowed

    from leadrecord.middleware import FriendlyMethodNotAllowedMiddleware

    own = HttpResponseNotAllowed(["POST"], content=b"mine")
    middleware = FriendlyMethodNotAllowedMiddleware(lambda request: own)
    assert middleware(rf.get("/somewhere/")) is own
