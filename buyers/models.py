"""The buyer's side: the forms marketers publish, what people send through them, the
browsers that sent them (with analytics consent), and erasure requests from the portal.

Rows are written only by ``buyers.services``; each write appends to the ledger in
the same transaction. What a person sends lands on the record through the
contacts services (person, consents, disclosures, touch); a ``FormSubmission``
keeps only where it came from.
"""

from __future__ import annotations

from django.db import models

from contacts.models import Campaign, Contact, DisclosurePurpose

FORM_SLUG_MAX_LENGTH = 80
FORM_TITLE_MAX_LENGTH = 200
FORM_INTRO_MAX_LENGTH = 2000
NOTICE_MAX_LENGTH = 2000
URL_MAX_LENGTH = 2000  # a page address as browsers send it; longer ones are cut
CLICK_ID_MAX_LENGTH = 500
# The click ids ad platforms append to landing pages' addresses.
CLICK_ID_KEYS = ("gclid", "fbclid", "msclkid", "li_fat_id")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class BuyerForm(models.Model):
    """A form a marketer publishes: what it asks, which consents, which disclosures.

    ``consents`` is a list of ``{"purpose", "notice", "version"}``; ``disclosures``
    a list of ``{"key", "label"}`` (``journey_stage`` offers the stages, other keys
    take free text). The buyer chooses each disclosure's audience on the form.
    """

    slug = models.SlugField(max_length=FORM_SLUG_MAX_LENGTH, unique=True)
    title = models.CharField(max_length=FORM_TITLE_MAX_LENGTH)
    intro = models.TextField(max_length=FORM_INTRO_MAX_LENGTH, blank=True, default="")
    ask_names = models.BooleanField(default=True)
    ask_organization = models.BooleanField(default=True)
    consents = models.JSONField(default=list)
    disclosures = models.JSONField(default=list)
    # Why the person shares what the form asks (every disclosure of the form).
    purpose = models.CharField(
        max_length=32, choices=DisclosurePurpose.choices, default=DisclosurePurpose.QUALIFICATION
    )
    # The campaign of a submission with no utm_campaign naming one.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    published = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(purpose__in=DisclosurePurpose.values),
                name="buyer_form_purpose_valid",
            )
        ]

    def __str__(self) -> str:
        return self.title


class Visitor(models.Model):
    """A browser that carries a first-party visitor id, set only with analytics consent.

    The cookie holds a random token; only its SHA-256 is stored, so this table
    alone cannot be replayed as cookies. ``contact`` is who sent a form from it
    (the latest). Withdrawing analytics consent deletes the row and its visits.
    """

    token_hash = models.CharField(max_length=64, unique=True)
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"visitor #{self.pk}"


# A submission's columns as both of its writers insert it (the id comes from the sequence,
# or a new person's post takes it first: buyers.bulk).
FORM_SUBMISSION_COLUMNS = (
    "form_id",
    "contact_id",
    "touch_id",
    "campaign_id",
    "shared_device",
    "created_person",
    "submitted_at",
    "page_url",
    "referrer",
    "utm",
    "click_ids",
)


class FormSubmission(models.Model):
    """One form sent: who, from where, and what it recorded (the touch)."""

    # Indexed by submission_form_time and submission_contact below: an index of their
    # own each would be two more to write with every form sent, and read by nothing.
    form = models.ForeignKey(
        BuyerForm, on_delete=models.PROTECT, related_name="submissions", db_index=False
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+", db_index=False)
    touch = models.ForeignKey(
        "contacts.Touch", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The browser had sent a form for someone else before: a new email from a
    # known browser is a new person, and this says so.
    shared_device = models.BooleanField(default=False)
    created_person = models.BooleanField(default=False)
    submitted_at = models.DateTimeField()
    # Emptied by erasure: a page's address or a click id can name the person.
    page_url = models.CharField(max_length=URL_MAX_LENGTH, blank=True, default="")
    referrer = models.CharField(max_length=URL_MAX_LENGTH, blank=True, default="")
    utm = models.JSONField(default=dict)
    click_ids = models.JSONField(default=dict)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [
            models.Index(fields=["form", "submitted_at"], name="submission_form_time"),
            models.Index(fields=["contact"], name="submission_contact"),
        ]

    def __str__(self) -> str:
        return f"submission #{self.pk} of {self.form_id}"


class ErasureRequest(models.Model):
    """A person's request, from their portal, that the privacy officer erase them."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    requested_at = models.DateTimeField()

    class Meta:
        ordering = ["requested_at", "id"]

    def __str__(self) -> str:
        return f"erasure request of contact #{self.contact_id}"


class PortalLink(models.Model):
    """A sign-in link sent to a person's email: single use, valid for 30 minutes.

    Only the SHA-256 of the link's secret is kept; the link itself is in the
    person's mailbox and nowhere else.
    """

    token_hash = models.CharField(max_length=64, unique=True)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"portal link #{self.pk}"


VISIT_PATH_MAX_LENGTH = 500


class Visit(models.Model):
    """A page view from a browser with a visitor id (so: with analytics consent).

    Kept until the visitor's person sends a form, when each becomes a ``web``
    touch dated when it happened, and deleted; withdrawing analytics consent,
    or erasure, deletes the visitor and with it these.
    """

    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="visits")
    occurred_at = models.DateTimeField()
    page_url = models.CharField(max_length=URL_MAX_LENGTH, blank=True, default="")
    referrer = models.CharField(max_length=URL_MAX_LENGTH, blank=True, default="")
    utm = models.JSONField(default=dict)
    click_ids = models.JSONField(default=dict)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["visitor", "occurred_at"], name="visit_visitor_time")]

    def __str__(self) -> str:
        return f"visit #{self.pk}"


class DailyVisitCount(models.Model):
    """Page views without analytics consent: a count per day, page and campaign, and
    nothing about who (no cookie, no address, no hash)."""

    day = models.DateField()
    path = models.CharField(max_length=VISIT_PATH_MAX_LENGTH)
    utm_campaign = models.CharField(max_length=200, blank=True, default="")
    views = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "path"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "path", "utm_campaign"], name="daily_visit_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.path}: {self.views}"
