"""The first-run guide: every role's main job, its own section first, links that lead somewhere."""

import re
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import Resolver404, resolve, reverse

from leadrecord.roles import Role
from leadrecord.views import GUIDE_ROLES
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# The pages each role's section must send them to (issue 8: a newcomer's path).
MAIN_PAGES = {
    Role.MARKETER: ["touches", "touch-import", "contacts", "handoffs-returned"],
    Role.SALES_REP: ["handoff-queue", "deal-new", "deals"],
    Role.MANAGER: ["rulesets", "targets", "dashboard-manager", "ledger"],
    Role.PRIVACY_OFFICER: ["contacts", "ledger"],
    Role.INTEGRATION: ["api-docs"],
}


def _user(username: str, **kwargs: Any) -> User:
    return cast(User, UserFactory(username=username, **kwargs))


def _guide(role: str | None) -> tuple[int, str, list[str]]:
    client = Client()
    if role is not None:
        client.force_login(_user(f"guide-{role}", role=role))
    response = client.get(reverse("guide"))
    body = response.content.decode()
    order = re.findall(r'<section id="([a-z_]+)" class="guide-section"', body)
    return response.status_code, body, order


@pytest.mark.parametrize("role", Role.values)
def test_each_role_sees_its_own_section_first_then_every_other(role):
    status, body, order = _guide(role)
    assert status == 200
    assert order[0] == role
    assert sorted(order) == sorted(Role.values)
    own = body.split(f'<section id="{role}"')[1].split("</section>")[0]
    assert "your role" in own
    others = body.split("</section>", 1)[1]
    assert "your role" not in others


@pytest.mark.parametrize("role", Role.values)
def test_a_role_section_links_to_its_main_pages(role):
    _, body, _ = _guide(role)
    own = body.split(f'<section id="{role}"')[1].split("</section>")[0]
    links = set(re.findall(r'href="([^"#]+)"', own))
    for url_name in MAIN_PAGES[role]:
        url = reverse(url_name)
        assert any(link.split("?")[0] == url for link in links), (role, url_name, links)


def test_every_link_in_the_guide_resolves_to_a_page():
    _, body, _ = _guide(Role.MANAGER)
    content = body.split("<main", 1)[1]
    links = set(re.findall(r'href="(/[^"#]*)"', content))
    assert len(links) >= 12
    for link in links:
        try:
            resolve(link.split("?")[0])
        except Resolver404:  # pragma: no cover - the assertion names it
            pytest.fail(f"the guide links to {link}, which is no page")


@pytest.mark.parametrize(
    ("role", "url_name"),
    [
        (Role.MARKETER, "touches"),
        (Role.MARKETER, "handoffs-returned"),
        (Role.SALES_REP, "handoff-queue"),
        (Role.MANAGER, "rulesets"),
        (Role.PRIVACY_OFFICER, "contacts"),
    ],
)
def test_the_role_may_open_the_pages_its_section_names(role, url_name):
    client = Client()
    client.force_login(_user(f"opener-{role}", role=role))
    assert client.get(reverse(url_name)).status_code == 200


def test_the_integration_section_shows_a_token_and_an_events_example():
    _, body, _ = _guide(Role.INTEGRATION)
    own = body.split('<section id="integration"')[1].split("</section>")[0]
    assert "issue_token" in own
    assert "/api/v1/events/" in own
    assert "Idempotency-Key" in own
    # Shown as text, not markup: the JSON's quotes are escaped.
    assert "&quot;events&quot;" in own


def test_a_user_without_a_role_sees_every_section_in_the_guide_order():
    client = Client()
    client.force_login(_user("newcomer"))
    body = client.get(reverse("guide")).content.decode()
    order = re.findall(r'<section id="([a-z_]+)" class="guide-section"', body)
    assert order == list(GUIDE_ROLES)
    assert "your role" not in body


def test_anonymous_visitors_are_sent_to_log_in():
    response = Client().get(reverse("guide"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=/guide/" in response["Location"]


@pytest.mark.parametrize("role", [Role.MARKETER, Role.INTEGRATION])
def test_home_and_the_navigation_lead_to_the_guide(role):
    client = Client()
    client.force_login(_user(f"home-{role}", role=role))
    body = client.get(reverse("home")).content.decode()
    assert f'href="{reverse("guide")}"' in body
