"""The record page reads in words: actions by their labels, subjects named and linked."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from handoff.services import target_set
from leadrecord.ledger import Actor
from leadrecord.roles import Role

from ..factories import contact_make

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [Role.MANAGER, Role.PRIVACY_OFFICER])
def test_the_record_names_actions_and_links_their_subjects(role, users):
    person = contact_make(email="ada@acme.example", first_name="Ada")
    target_set(period="2026-Q4", share=Decimal("0.4"), actor=Actor.system("test"))
    client = Client()
    client.force_login(users[role])
    page = client.get(reverse("ledger")).content.decode()
    # The action filter's options carry the keys as their values; what a reader sees is words.
    shown = re.sub(r'value="[^"]*"', "", page)
    assert "Person created" in shown and "contact.create" not in shown
    assert f'<a href="{reverse("contact", args=[person.pk])}">Person</a>' in page
    assert f"contact {person.pk}" not in page
    assert "Target for 2026-Q4" in page and "Target set" in page
