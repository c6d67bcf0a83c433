import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from knox.models import AuthToken

from leadrecord.ledger import ledger_verify
from leadrecord.models import LedgerEntry
from leadrecord.roles import user_roles

pytestmark = pytest.mark.django_db


def test_add_user_creates_a_user_in_the_role_on_the_record(capsys):
    call_command("add_user", "dana", role="sales_rep", password="s3cret-passphrase")
    user = get_user_model().objects.get(username="dana")
    assert user_roles(user) == {"sales_rep"}
    request = RequestFactory().post("/login/")
    assert authenticate(request, username="dana", password="s3cret-passphrase") == user
    assert "created user dana with role sales_rep" in capsys.readouterr().out
    entry = LedgerEntry.objects.get()
    assert (entry.action, entry.subject_id, entry.actor_kind) == (
        "user.create",
        str(user.pk),
        "system",
    )
    assert "s3cret" not in str(entry.after)


def test_add_user_without_password_cannot_log_in():
    call_command("add_user", "erp", role="integration")
    assert not get_user_model().objects.get(username="erp").has_usable_password()


def test_add_user_refuses_an_unknown_role():
    with pytest.raises(CommandError):
        call_command("add_user", "x", role="overlord")
    assert not get_user_model().objects.filter(username="x").exists()


def test_issue_token_prints_only_a_new_key_each_time(capsys):
    call_command("add_user", "crm", role="integration")
    capsys.readouterr()
    call_command("issue_token", "crm")
    first = capsys.readouterr().out
    call_command("issue_token", "crm")
    second = capsys.readouterr().out
    assert first != second  # a key is shown once, when it is made; never again
    for out in (first, second):
        assert out == out.strip() + "\n"
        assert len(out.strip()) == 64
    assert AuthToken.objects.filter(user__username="crm").count() == 2
    assert ledger_verify().entries == 3  # user.create and two token.issue


def test_issue_token_for_an_unknown_user_fails():
    with pytest.raises(CommandError, match="no user"):
        call_command("issue_token", "nobody")


def test_seed_demo_is_repeatable(capsys):
    call_command("seed_demo")
    count = get_user_model().objects.count()
    entries = LedgerEntry.objects.count()
    call_command("seed_demo")
    assert get_user_model().objects.count() == count == 6
    assert LedgerEntry.objects.count() == entries
    assert "leadrecord-demo" in capsys.readouterr().out


def test_grant_app_role_on_the_embedded_database_says_roles_are_postgresqls():
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the embedded database only")
    with pytest.raises(CommandError, match="database roles are PostgreSQL's"):
        call_command("grant_app_role", "leadrecord_app")
