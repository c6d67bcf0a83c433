"""A logged-in session's user is read with their roles in one query
(``leadrecord.authentication.SessionUserBackend``), and refused as Django's backend would."""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadrecord.authentication import SessionUserBackend
from leadrecord.roles import Role, user_roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _user(**fields: Any) -> User:
    return cast(User, UserFactory(**fields))


def test_the_user_and_their_roles_are_one_query():
    user = _user(username="two-hats", role=Role.MANAGER)
    user.groups.add(Group.objects.get(name=Role.MARKETER), Group.objects.create(name="book club"))
    with CaptureQueriesContext(connection) as queries:
        found = SessionUserBackend().get_user(str(user.pk))
        roles = user_roles(found)
    assert found == user and found.username == "two-hats"
    assert roles == {Role.MANAGER, Role.MARKETER}  # not a group that is no role
    assert len(queries.captured_queries) == 1
    nobody = _user(username="no-role", role=None)
    assert user_roles(SessionUserBackend().get_user(nobody.pk)) == frozenset()


@pytest.mark.parametrize("user_id", ["", "x", "1; DROP TABLE auth_user", "9" * 40, None])
def test_a_user_id_that_names_no_user_is_nobody(user_id):
    assert SessionUserBackend().get_user(user_id) is None
    assert SessionUserBackend().get_user(10**9) is None


def test_an_inactive_user_is_nobody():
    user = _user(username="gone", role=Role.SALES_REP, is_active=False)
    assert SessionUserBackend().get_user(user.pk) is None


def test_a_logged_in_page_reads_the_session_and_the_user_with_roles_only(client):
    user = _user(username="reader", role=Role.MANAGER)
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/me/").status_code == 200
    auth = [q["sql"] for q in queries.captured_queries if "auth_" in q["sql"]]
    assert len(auth) == 1 and "role_names" in auth[0]
    user.is_active = False
    user.save()
    assert client.get("/api/v1/me/").status_code in (401, 403)
