"""Who may reach what: roles, anonymous callers, tokens, login throttling."""

import pytest
import yaml
from axes.models import AccessAttempt
from django.urls import reverse
from rest_framework.test import APIClient

from leadrecord.roles import Role

from ..factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

ALL_ROLES = Role.values
LEDGER_READERS = {Role.MANAGER, Role.PRIVACY_OFFICER}


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_role_can_ask_who_it_is(role, users, api_client_for):
    response = api_client_for(users[role]).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["roles"] == [role]


@pytest.mark.parametrize("role", ALL_ROLES)
def test_ledger_api_is_for_managers_and_the_privacy_officer(role, users, api_client_for):
    response = api_client_for(users[role]).get("/api/v1/ledger/")
    if role in LEDGER_READERS:
        assert response.status_code == 200
        assert set(response.json()) == {"count", "next", "previous", "results"}
    else:
        assert response.status_code == 403
        assert response.json()["type"] == "client_error"
        assert response.json()["errors"][0]["code"] == "permission_denied"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_record_page_is_for_managers_and_the_privacy_officer(role, users, client):
    client.force_login(users[role])
    response = client.get(reverse("ledger"))
    assert response.status_code == (200 if role in LEDGER_READERS else 403)


def test_a_user_without_a_role_is_refused(make_user, api_client_for):
    response = api_client_for(make_user()).get("/api/v1/me/")
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/me/", "/api/v1/ledger/", "/api/v1/schema/"])
def test_anonymous_api_calls_get_401(path):
    response = APIClient().get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    # The schema view renders its errors as OpenAPI YAML/JSON; same body.
    body = yaml.safe_load(response.content)
    assert body["errors"][0]["code"] == "not_authenticated"


def test_an_unknown_token_gets_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"


def test_a_token_brings_every_role_of_its_user_and_changes_show_at_once(make_user, api_client_for):
    from django.contrib.auth.models import Group

    user = make_user(Role.MARKETER)
    client = api_client_for(user)
    user.groups.add(Group.objects.get(name=Role.MANAGER))
    assert client.get("/api/v1/me/").json()["roles"] == [Role.MANAGER, Role.MARKETER]
    assert client.get("/api/v1/ledger/").status_code == 200
    user.groups.remove(Group.objects.get(name=Role.MANAGER))
    assert client.get("/api/v1/me/").json()["roles"] == [Role.MARKETER]
    assert client.get("/api/v1/ledger/").status_code == 403


def test_the_token_of_a_deactivated_user_gets_401(make_user, api_client_for):
    user = make_user(Role.INTEGRATION)
    client = api_client_for(user)
    assert client.get("/api/v1/me/").status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"


@pytest.mark.parametrize("header", ["Token", "Token a b", "Bearer abc", "Token \x00"])
def test_malformed_authorization_headers_get_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/me/").status_code == 401


def test_anonymous_pages_redirect_to_login(client):
    for name in ("home", "ledger"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_login_and_logout_with_the_session(client, users):
    response = client.post(
        reverse("login"),
        {"username": users[Role.MARKETER].username, "password": TEST_PASSWORD},
        REMOTE_ADDR="10.0.0.1",
    )
    assert response.status_code == 302
    assert response.url == reverse("home")
    home = client.get(reverse("home"))
    assert b"Marketer" in home.content
    # Marketers have no record page in their navigation.
    assert reverse("ledger").encode() not in home.content
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_navigation_follows_the_role(client, users):
    client.force_login(users[Role.MANAGER])
    assert f'href="{reverse("ledger")}"'.encode() in client.get(reverse("home")).content


def _login(client, username, password, address="10.0.0.2"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_wrong_password_and_unknown_user_get_the_same_answer(client, users):
    wrong = _login(client, users[Role.MANAGER].username, "not-the-password")
    unknown = _login(client, "nobody-by-this-name", "not-the-password")
    assert wrong.status_code == unknown.status_code == 200
    assert b"Please enter a correct username and password" in wrong.content
    assert b"Please enter a correct username and password" in unknown.content


def test_repeated_failed_logins_are_throttled(client, users, settings):
    username = users[Role.MANAGER].username
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, username, "wrong").status_code == 200
    locked = _login(client, username, "wrong")
    assert locked.status_code == 429
    # Even the right password is refused while the lockout lasts...
    assert _login(client, username, TEST_PASSWORD).status_code == 429
    # ...but only for that username from that address.
    assert _login(client, username, TEST_PASSWORD, address="10.9.9.9").status_code == 302
    assert AccessAttempt.objects.filter(username=username).exists()


def test_unknown_usernames_are_throttled_alike(client, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _login(client, "ghost", "wrong")
    assert response.status_code == 429
