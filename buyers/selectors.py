"""The buyer's side, read: published forms, their submissions, what a known browser
already told us (progressive profiling)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from contacts.models import ConsentPurpose, Contact, Disclosure
from contacts.selectors import consents_current
from leadrecord.roles import Role

from .models import BuyerForm, FormSubmission
from .services import visitor_for_token

FORM_ROLES = (Role.MARKETER, Role.MANAGER)


def forms_all() -> QuerySet[BuyerForm]:
    return BuyerForm.objects.select_related("campaign")


def form_published(slug: str) -> BuyerForm | None:
    return BuyerForm.objects.filter(slug=slug, published=True).first()


def form_submissions(form: BuyerForm) -> QuerySet[FormSubmission]:
    return FormSubmission.objects.filter(form=form).select_related("contact", "campaign")


def analytics_granted(contact_id: int) -> bool:
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None or not contact.is_living:
        return False
    return any(
        state.purpose == ConsentPurpose.ANALYTICS and state.granted
        for state in consents_current(contact)
    )


def keys_already_disclosed(visitor_token: str | None) -> frozenset[str]:
    """The disclosure keys a known, consenting browser's person has on record now.

    Only a visitor id (set with analytics consent) makes a browser known, and
    only while that consent stands; a form then leaves these keys out.
    """
    visitor = visitor_for_token(visitor_token)
    if visitor is None or visitor.contact_id is None:
        return frozenset()
    if not analytics_granted(visitor.contact_id):
        return frozenset()
    now = timezone.now()
    keys = (
        Disclosure.objects.filter(contact_id=visitor.contact_id, withdrawn_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values_list("key", flat=True)
    )
    return frozenset(keys)


def submissions_by_campaign(form: BuyerForm) -> list[dict[str, object]]:
    """How many people sent the form, per campaign (none: the form's own page)."""
    rows = (
        FormSubmission.objects.filter(form=form)
        .values("campaign__name")
        .annotate(count=Count("id"))
        .order_by("-count", "campaign__name")
    )
    return [dict(row) for row in rows]
