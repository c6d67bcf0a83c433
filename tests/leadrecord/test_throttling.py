"""Per-token rate limits: over a limit, 429 with Retry-After in the project's error format."""

import pytest
from django.core.cache import cache
from django.test import override_settings
from knox.models import AuthToken
from rest_framework.test import APIClient

from leadrecord.roles import Role

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture(autouse=True)
def _fresh_counts():
    cache.clear()
    yield
    cache.clear()


@override_settings(API_RATE_LIMIT_BURST="3/day")
def test_over_the_burst_limit_a_token_gets_429_with_retry_after(users):
    _, key = AuthToken.objects.create(user=users[Role.INTEGRATION])
    client = client_with(key)
    assert [client.get("/api/v1/me/").status_code for _ in range(3)] == [200] * 3
    response = client.get("/api/v1/me/")
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 24 * 60 * 60
    body = response.json()
    assert body["type"] == "client_error"
    assert body["errors"][0]["code"] == "throttled"
    assert body["errors"][0]["attr"] is None
    # Writes count too, and are refused before anything is stored.
    refused = client.post("/api/v1/contacts/", {"email": "over@limit.example"}, format="json")
    assert refused.status_code == 429


@override_settings(API_RATE_LIMIT="2/hour")
def test_the_sustained_limit_applies_per_token_not_per_user(users):
    user = users[Role.INTEGRATION]
    _, first = AuthToken.objects.create(user=user)
    _, second = AuthToken.objects.create(user=user)
    _, someone_else = AuthToken.objects.create(user=users[Role.MANAGER])
    for _ in range(2):
        assert client_with(first).get("/api/v1/me/").status_code == 200
    assert client_with(first).get("/api/v1/me/").status_code == 429
    assert client_with(second).get("/api/v1/me/").status_code == 200
    assert client_with(someone_else).get("/api/v1/ledger/").status_code == 200


@override_settings(API_RATE_LIMIT_BURST="1/day")
def test_a_signed_in_browser_session_is_limited_per_user(users):
    client = APIClient()
    client.force_login(users[Role.MARKETER])
    assert client.get("/api/v1/me/").status_code == 200
    assert client.get("/api/v1/me/").status_code == 429


@override_settings(API_RATE_LIMIT_BURST="1/day", API_RATE_LIMIT="1/day")
def test_health_and_refused_callers_are_not_counted(users):
    anonymous = APIClient()
    assert [anonymous.get("/api/v1/health/").status_code for _ in range(5)] == [200] * 5
    # Anonymous and wrong-token calls are 401 (not 429), every time.
    assert [anonymous.get("/api/v1/me/").status_code for _ in range(3)] == [401] * 3
    assert [client_with("0" * 64).get("/api/v1/me/").status_code for _ in range(3)] == [401] * 3
    # A wrong role is a 403, also every time, and does not use up the token's allowance.
    _, key = AuthToken.objects.create(user=users[Role.MARKETER])
    client = client_with(key)
    assert [client.get("/api/v1/ledger/").status_code for _ in range(3)] == [403] * 3
    assert client.get("/api/v1/me/").status_code == 200
    assert client.get("/api/v1/me/").status_code == 429


def test_the_default_limits_are_generous(users):
    """The defaults never stop real work: a few hundred calls in a row all pass."""
    _, key = AuthToken.objects.create(user=UserFactory(username="busy", role=Role.INTEGRATION))
    client = client_with(key)
    assert {client.get("/api/v1/me/").status_code for _ in range(300)} == {200}


@pytest.mark.parametrize(
    "name,value",
    [
        ("API_RATE_LIMIT", "lots"),
        ("API_RATE_LIMIT", "0/hour"),
        ("API_RATE_LIMIT_BURST", "10/fortnight"),
        ("API_TOKEN_TTL_DAYS", "0"),
    ],
)
def test_bad_limit_settings_stop_the_start(name, value):
    import subprocess
    import sys

    from ..workers import ROOT

    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "leadrecord.settings", "DEBUG": "1", name: value},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and name in done.stderr
