"""A process remembers the published forms it read: never past an unpublish it made, and
nothing sent lands on a form unpublished meanwhile (by another process)."""

from __future__ import annotations

import pytest
from django.test import Client

from buyers import services
from buyers.models import BuyerForm, FormSubmission
from buyers.services import Arrival, FormInput
from contacts.models import Contact, Touch
from contacts.selectors import campaign_for_utm, channel_for_write
from contacts.services import channel_update
from leadrecord.errors import InvalidInput
from leadrecord.models import LedgerEntry

from .conftest import SYSTEM, send

pytestmark = pytest.mark.django_db

PERSON = {"email": "ana@acme.example", "budget": "50k", "budget__audience": "sales"}


def test_an_unpublished_form_is_gone_at_once_after_it_was_shown(buyer_form):
    assert send(Client(), buyer_form.slug, PERSON).status_code == 200  # remembered now
    services.buyer_form_publish(form=buyer_form, published=False, actor=SYSTEM)
    assert Client().get(f"/f/{buyer_form.slug}/").status_code == 404
    assert Client().post(f"/f/{buyer_form.slug}/", PERSON).status_code == 404
    services.buyer_form_publish(form=buyer_form, published=True, actor=SYSTEM)
    assert Client().get(f"/f/{buyer_form.slug}/").status_code == 200


def test_a_form_unpublished_by_another_process_takes_no_post(buyer_form):
    """Another process unpublished it (this one heard nothing): the page this process
    remembers still shows, but what is sent is refused as for any unpublished form,
    writes nothing, and the form is gone here too from then on."""
    client = Client()
    page = client.get(f"/f/{buyer_form.slug}/")
    assert page.status_code == 200
    # As another process's write looks from here: no save in this process.
    BuyerForm.objects.filter(pk=buyer_form.pk).update(published=False)
    entries = LedgerEntry.objects.count()

    answer = send(client, buyer_form.slug, PERSON)

    assert answer.status_code == 404
    assert not Contact.objects.exists()
    assert not Touch.objects.exists()
    assert not FormSubmission.objects.exists()
    assert LedgerEntry.objects.count() == entries
    assert client.get(f"/f/{buyer_form.slug}/").status_code == 404


def test_the_service_refuses_a_form_read_before_it_was_unpublished(buyer_form):
    stale = BuyerForm.objects.get(pk=buyer_form.pk)
    BuyerForm.objects.filter(pk=buyer_form.pk).update(published=False)
    entries = LedgerEntry.objects.count()
    with pytest.raises(InvalidInput) as refused:
        services.form_submit(
            form=stale, data=FormInput(email="ana@acme.example"), arrival=Arrival()
        )
    assert refused.value.attr == "form"
    assert not Contact.objects.exists()
    assert not FormSubmission.objects.exists()
    assert LedgerEntry.objects.count() == entries


def test_a_new_form_under_a_forgotten_slug_is_read_afresh(buyer_form):
    assert Client().get(f"/f/{buyer_form.slug}/").status_code == 200
    BuyerForm.objects.filter(pk=buyer_form.pk).delete()
    assert Client().get(f"/f/{buyer_form.slug}/").status_code == 404
    again = services.buyer_form_create(
        slug=buyer_form.slug, title="Again", consents=[], disclosures=[], actor=SYSTEM
    )
    page = Client().get(f"/f/{again.slug}/")
    assert page.status_code == 200
    assert b"Again" in page.content


def test_a_channel_written_in_this_process_is_read_afresh():
    web = channel_for_write("web")
    assert channel_for_write("web") is web  # remembered
    channel_update(channel=web, team="sales", active=True, actor=SYSTEM)
    again = channel_for_write("web")
    assert again is not web
    assert again.team == "sales"


def test_a_utm_campaign_names_its_campaign_in_any_case_with_its_channel(campaign):
    found = campaign_for_utm("SPRING-2026")
    assert found == campaign
    assert found is not None and found.channel.key == "paid_search"
    assert found.cost == campaign.cost and found.created_at == campaign.created_at
    assert campaign_for_utm("autumn") is None
