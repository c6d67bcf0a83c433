"""API tokens: stored as digests, shown once, expiring, rotated, revoked; malformed keys refused."""

import io
import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


def issue(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command("issue_token", name, *args, stdout=out)
    return out.getvalue().strip()


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def me_status(key: str) -> int:
    return client_with(key).get("/api/v1/me/").status_code


@pytest.fixture
def erp() -> User:
    return cast(User, UserFactory(username="erp", role=Role.INTEGRATION))


def after(entry: LedgerEntry) -> dict[str, Any]:
    assert isinstance(entry.after, dict)
    return entry.after


def _row_text(token: AuthToken) -> str:
    return json.dumps(
        list(AuthToken.objects.filter(pk=token.pk).values().get().values()), default=str
    )


def test_the_key_is_never_stored_only_its_digest(erp):
    key = issue("erp")
    assert me_status(key) == 200
    token = AuthToken.objects.get(user=erp)
    # Every column of the row: the digest and the key's first characters, no key.
    assert key not in _row_text(token)
    assert token.digest == hash_token(key) != key
    assert key.startswith(token.token_key) and len(token.token_key) < len(key) // 4
    # Nor on the ledger, which never forgets.
    assert not any(key in json.dumps(entry.after) for entry in LedgerEntry.objects.all())


def test_a_key_is_shown_once_and_each_issue_makes_a_new_one(erp):
    first, second = issue("erp"), issue("erp")
    assert first != second
    # Both work (no rotation asked); nothing stored can give either back.
    assert me_status(first) == me_status(second) == 200
    assert set(AuthToken.objects.values_list("digest", flat=True)) == {
        hash_token(first),
        hash_token(second),
    }
    entries = LedgerEntry.objects.filter(action="token.issue")
    assert entries.count() == 2
    assert {after(entry)["rotated"] for entry in entries} == {False}


def test_a_token_expires_after_the_configured_days(erp):
    before = timezone.now()
    key = issue("erp")
    token = AuthToken.objects.get(digest=hash_token(key))
    assert token.expiry is not None
    assert timedelta(days=90) <= token.expiry - before < timedelta(days=90, minutes=1)
    entry = LedgerEntry.objects.get(action="token.issue")
    assert after(entry)["expires_at"] == token.expiry.isoformat()


@override_settings(REST_KNOX={"TOKEN_TTL": timedelta(days=7)})
def test_the_expiry_follows_the_setting(erp):
    key = issue("erp")
    expiry = AuthToken.objects.get(digest=hash_token(key)).expiry
    assert expiry is not None
    assert timedelta(days=6) < expiry - timezone.now() <= timedelta(days=7)


def test_an_expired_token_gets_401(erp):
    key = issue("erp")
    assert me_status(key) == 200
    AuthToken.objects.filter(digest=hash_token(key)).update(
        expiry=timezone.now() - timedelta(seconds=1)
    )
    response = client_with(key).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"
    # A token that expires a moment from now still works.
    AuthToken.objects.filter(digest=hash_token(key)).update(
        expiry=timezone.now() + timedelta(seconds=30)
    )
    assert me_status(key) == 200


def test_rotation_revokes_the_users_other_tokens_and_only_theirs(erp):
    old, older = issue("erp"), issue("erp")
    other_user = cast(User, UserFactory(username="crm", role=Role.INTEGRATION))
    others = issue(other_user.username)
    new = issue("erp", "--rotate")
    assert me_status(new) == 200
    assert me_status(old) == me_status(older) == 401
    assert me_status(others) == 200
    assert AuthToken.objects.filter(user=erp).count() == 1
    entry = LedgerEntry.objects.filter(action="token.issue").latest("seq")
    assert after(entry)["rotated"] is True
    assert after(entry)["revoked"] == 2
    assert ledger_verify().ok


def test_rotation_also_clears_expired_tokens(erp):
    stale = issue("erp")
    AuthToken.objects.filter(digest=hash_token(stale)).update(
        expiry=timezone.now() - timedelta(days=1)
    )
    issue("erp", "--rotate")
    assert not AuthToken.objects.filter(digest=hash_token(stale)).exists()


def test_a_token_of_a_user_without_the_role_is_refused_per_endpoint(erp):
    key = issue("erp")
    assert me_status(key) == 200
    assert client_with(key).get("/api/v1/ledger/").status_code == 403
    roleless = cast(User, UserFactory(username="nobody-in-particular"))
    assert me_status(issue(roleless.username)) == 403


def test_a_key_that_shares_the_stored_prefix_but_not_the_rest_gets_401(erp):
    key = issue("erp")
    tampered = key[:15] + ("0" if key[15] != "0" else "1") + key[16:]
    assert me_status(tampered) == 401
    assert me_status(key.upper()) == 401


@pytest.mark.parametrize(
    "header",
    [
        "Token " + "g" * 64,
        "Token " + "a" * 63,
        "Token " + "a" * 65,
        "Token " + "a" * 64 + "\x00",
        "Token \xff\xfe",
        "Token " + "a" * 10_000,
    ],
    ids=["not-hex", "short", "long", "nul", "not-utf8", "huge"],
)
def test_malformed_keys_get_401_not_500(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"


def test_plain_tokens_from_before_are_carried_over_as_digests():
    """The migration to knox: DRF's plain keys become digests, keep working, then the
    plain table is gone."""
    migration = __import__(
        "leadrecord.migrations.0006_api_tokens_hashed", fromlist=["plain_tokens_to_digests"]
    )
    user = cast(User, UserFactory(username="legacy", role=Role.INTEGRATION))
    legacy_key = "0123456789abcdef0123456789abcdef01234567"  # DRF's 40 hex characters
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamp with time zone NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [legacy_key, timezone.now().isoformat(), user.pk],
        )
    migration.plain_tokens_to_digests(apps, SimpleNamespace(connection=connection))
    assert "authtoken_token" not in connection.introspection.table_names()
    token = AuthToken.objects.get(user=user)
    assert token.digest == hash_token(legacy_key)
    assert legacy_key not in _row_text(token)
    assert token.expiry is not None and token.expiry > timezone.now() + timedelta(days=89)
    assert me_status(legacy_key) == 200
    # Run again (a fresh install has no such table): nothing to do.
    migration.plain_tokens_to_digests(apps, SimpleNamespace(connection=connection))


def test_the_admin_lists_tokens_without_keys_and_revokes_on_the_record(erp):
    key = issue("erp")
    token = AuthToken.objects.get(digest=hash_token(key))
    admin_user = cast(User, UserFactory(username="root", is_staff=True, is_superuser=True))
    browser = Client()
    browser.force_login(admin_user)
    listing = browser.get(reverse("admin:knox_authtoken_changelist"))
    assert listing.status_code == 200
    assert key not in listing.content.decode()
    assert browser.get(reverse("admin:knox_authtoken_add")).status_code == 403
    response = browser.post(
        reverse("admin:knox_authtoken_delete", args=[token.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert me_status(key) == 401
    entry = LedgerEntry.objects.get(action="token.revoke")
    assert entry.after == {"username": "erp", "revoked": 1}
    assert entry.actor_label == "root"
    assert ledger_verify().ok


def test_the_schema_documents_token_auth_and_the_rate_limit(users, api_client_for):
    schema = api_client_for(users[Role.MANAGER]).get("/api/v1/schema/?format=json").json()
    scheme = schema["components"]["securitySchemes"]["tokenAuth"]
    assert scheme["type"] == "apiKey" and scheme["name"] == "Authorization"
    assert "expires" in scheme["description"] and "429" in scheme["description"]
    me = schema["paths"]["/api/v1/me/"]["get"]
    assert {"tokenAuth": []} in me["security"]
    assert "429" in me["responses"]
    assert "429" not in schema["paths"]["/api/v1/health/"]["get"]["responses"]
