"""A published form's fields are built once per shape and process and shared by its
forms: nothing one request does to them reaches the next."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.test import Client

from buyers.forms import PublicForm

from .conftest import send

pytestmark = pytest.mark.django_db


def _attrs(form: PublicForm) -> dict[str, dict[str, object]]:
    return {name: dict(field.widget.attrs) for name, field in form.fields.items()}


def test_forms_of_one_shape_share_their_fields_and_another_shape_has_its_own(buyer_form):
    first, second = PublicForm(form=buyer_form), PublicForm(form=buyer_form)
    assert first.fields["budget"] is second.fields["budget"]
    assert first.fields is not second.fields
    assert first.fields["email"] is not second.fields["email"]  # Django's own copy
    known = PublicForm(form=buyer_form, skip_keys=frozenset({"budget"}))
    assert "budget" not in known.fields and "budget" not in known.disclosure_keys
    assert known.fields["timeline"] is not first.fields["timeline"]
    assert first.disclosure_keys == ["journey_stage", "budget", "timeline"]
    first.disclosure_keys.append("mutated")  # each form's own list
    assert PublicForm(form=buyer_form).disclosure_keys == ["journey_stage", "budget", "timeline"]


def test_a_refused_post_leaves_nothing_on_the_fields_for_the_next_page(buyer_form):
    before = _attrs(PublicForm(form=buyer_form))
    client = Client()
    hostile = '"><script>alert(1)</script>'
    refused = send(
        client,
        buyer_form.slug,
        {"email": "not-an-email", "budget": hostile, "budget__audience": "nobody"},
    )
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "Enter a valid email address." in page
    assert "<script>alert(1)</script>" not in page
    fresh = client.get(f"/f/{buyer_form.slug}/").content.decode()
    assert "Enter a valid email address." not in fresh
    assert "not-an-email" not in fresh and "alert(1)" not in fresh
    bound = PublicForm(QueryDict("email=a%40b.example&budget=1"), form=buyer_form)
    assert bound.is_valid() and bound.cleaned_data["budget"] == "1"
    str(bound)  # rendered with its values and errors
    assert _attrs(PublicForm(form=buyer_form)) == before
