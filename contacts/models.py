"""People and what they chose to share: organizations, contacts, consents, disclosures.

Rows are written only by ``contacts.services``; each write appends to the
ledger in the same transaction. Who may read a disclosure is decided in one
place, ``contacts.selectors.disclosures_visible_to``.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower, Upper

from .channels import channel_label

# Field sizes, shared by models, serializers and forms.
EMAIL_MAX_LENGTH = 254  # RFC 5321's limit on a forward path
NAME_MAX_LENGTH = 150
TITLE_MAX_LENGTH = 200
ORGANIZATION_NAME_MAX_LENGTH = 200
DOMAIN_MAX_LENGTH = 253  # the longest DNS name
DISCLOSURE_KEY_MAX_LENGTH = 64
DISCLOSURE_VALUE_MAX_LENGTH = 2000
CONSENT_SOURCE_MAX_LENGTH = 200
NOTICE_VERSION_MAX_LENGTH = 64

JOURNEY_STAGE_KEY = "journey_stage"


class ConsentPurpose(models.TextChoices):
    ANALYTICS = "analytics", "Analytics"
    MARKETING_EMAIL = "marketing_email", "Marketing email"
    SALES_CONTACT = "sales_contact", "Sales contact"


class Audience(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    SALES = "sales", "Sales"
    ALL = "all", "Marketing and sales"


class DisclosurePurpose(models.TextChoices):
    """Why the person shared it: the consent purposes plus two of a disclosure's own."""

    ANALYTICS = "analytics", "Analytics"
    MARKETING_EMAIL = "marketing_email", "Marketing email"
    SALES_CONTACT = "sales_contact", "Sales contact"
    QUALIFICATION = "qualification", "Qualification"
    PERSONALIZATION = "personalization", "Personalization"


class DisclosureSource(models.TextChoices):
    SELF = "self", "The person themself"
    FORM = "form", "A form"
    CONVERSATION = "conversation", "A conversation"
    IMPORT = "import", "An import"
    API = "api", "Another system (API)"


# Sources under which a disclosure is the person's own word: they declared it
# themselves, or filled in a form. Only these make a stage the buyer's say-so.
SELF_DECLARED_SOURCES = (DisclosureSource.SELF.value, DisclosureSource.FORM.value)


class JourneyStage(models.TextChoices):
    LEARNING = "learning", "Learning"
    COMPARING = "comparing", "Comparing"
    READY_TO_TALK = "ready_to_talk", "Ready to talk"


class Organization(models.Model):
    name = models.CharField(max_length=ORGANIZATION_NAME_MAX_LENGTH)
    # Lower-cased; blank when unknown. Unique when known, so posts naming the
    # same company by its domain land on one organization.
    domain = models.CharField(max_length=DOMAIN_MAX_LENGTH, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain"],
                condition=~models.Q(domain=""),
                name="organization_domain_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(domain=Lower("domain")), name="organization_domain_lowercase"
            ),
        ]
        indexes = [models.Index(Lower("name"), name="organization_name_lower")]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    """A real person. After erasure the row stays, emptied, so counts keep their totals."""

    # ``email`` as given (trimmed); ``email_key`` lower-cased for matching.
    # Both are NULL once the person is erased.
    # NULL rather than "" so that erased rows stay out of the unique constraint.
    email = models.CharField(max_length=EMAIL_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001
    email_key = models.CharField(max_length=EMAIL_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001
    first_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="")
    last_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="")
    title = models.CharField(max_length=TITLE_MAX_LENGTH, blank=True, default="")
    # No index of its own: contact_organization (organization, id) leads with it.
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="contacts",
        db_index=False,
    )
    # Maintained by scoring (the handoff app) under the active ruleset.
    score = models.IntegerField(default=0)
    qualified = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    # A merged contact points at the one it was merged into; its email still
    # finds the survivor. Indexed only where set (contact_merged_into): nearly every
    # person is merged into no one, and each new one wrote a NULL entry.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_from",
        db_index=False,
    )
    merged_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["email_key"], name="contact_email_key_unique"),
            models.CheckConstraint(
                condition=models.Q(erased_at__isnull=False) | models.Q(email_key__isnull=False),
                name="contact_email_unless_erased",
            ),
            models.CheckConstraint(
                condition=~models.Q(merged_into=models.F("id")), name="contact_not_merged_into_self"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "id"], name="contact_organization"),
            # The qualified are looked for; the rest are most people, read by a scan.
            models.Index(
                fields=["qualified"],
                condition=models.Q(qualified=True),
                name="contact_qualified",
            ),
            models.Index(
                fields=["merged_into"],
                condition=models.Q(merged_into__isnull=False),
                name="contact_merged_into",
            ),
        ]

    def __str__(self) -> str:
        if self.erased_at:
            return f"Erased contact #{self.pk}"
        return self.display_name

    @property
    def display_name(self) -> str:
        full_name = f"{self.first_name} {self.last_name}".strip()
        return full_name or (self.email or f"Contact #{self.pk}")

    @property
    def is_living(self) -> bool:
        return self.erased_at is None and self.merged_into_id is None


class ContactKey(models.Model):
    """The per-person key that seals personal values in the ledger.

    Kept outside the ledger on purpose: erasure deletes this row, after which
    the sealed values in the (unchangeable) ledger can never be read again.
    """

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, primary_key=True)
    key = models.BinaryField(max_length=32)

    def __str__(self) -> str:
        return f"key of contact #{self.contact_id}"


class Consent(models.Model):
    """One grant or withdrawal. The history is every row; the current state is the latest."""

    # No index of its own: consent_latest (contact, purpose, occurred_at) leads with it.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="consents", db_index=False
    )
    purpose = models.CharField(max_length=32, choices=ConsentPurpose.choices)
    granted = models.BooleanField()
    source = models.CharField(max_length=CONSENT_SOURCE_MAX_LENGTH)
    notice_version = models.CharField(max_length=NOTICE_VERSION_MAX_LENGTH, blank=True, default="")
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    # Set when another system sent it (``POST events/``): a repeat of the pair is
    # the same event.
    event_source_system = models.CharField(max_length=100, blank=True, default="")
    event_external_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(purpose__in=ConsentPurpose.values), name="consent_purpose_valid"
            ),
            # Only an event's rows carry an external id: the others stay out of the
            # index (NULLs never clash anyway).
            models.UniqueConstraint(
                fields=["event_source_system", "event_external_id"],
                condition=models.Q(event_external_id__isnull=False),
                name="consent_event_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "purpose", "occurred_at"], name="consent_latest")
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {'granted' if self.granted else 'withdrawn'}"


class Disclosure(models.Model):
    """Something a person shared, with whom (audience) and why (purpose)."""

    # No index of its own: disclosure_contact_key (contact, key, disclosed_at) leads with it.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="disclosures", db_index=False
    )
    key = models.CharField(max_length=DISCLOSURE_KEY_MAX_LENGTH)
    # Emptied by erasure.
    value = models.TextField(max_length=DISCLOSURE_VALUE_MAX_LENGTH)
    audience = models.CharField(max_length=16, choices=Audience.choices)
    purpose = models.CharField(max_length=32, choices=DisclosurePurpose.choices)
    source = models.CharField(max_length=16, choices=DisclosureSource.choices)
    disclosed_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # Set when another system sent it (``POST events/``): a repeat of the pair is
    # the same event.
    event_source_system = models.CharField(max_length=100, blank=True, default="")
    event_external_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["disclosed_at", "id"]
        constraints = [
            # Only an event's rows carry an external id: the others stay out of the
            # index (NULLs never clash anyway).
            models.UniqueConstraint(
                fields=["event_source_system", "event_external_id"],
                condition=models.Q(event_external_id__isnull=False),
                name="disclosure_event_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(audience__in=Audience.values), name="disclosure_audience_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(purpose__in=DisclosurePurpose.values),
                name="disclosure_purpose_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=DisclosureSource.values),
                name="disclosure_source_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__isnull=True)
                | models.Q(expires_at__gt=models.F("disclosed_at")),
                name="disclosure_expires_after_disclosed",
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "key", "disclosed_at"], name="disclosure_contact_key"),
            models.Index(fields=["key", "audience"], name="disclosure_key_audience"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.audience})"


# --- channels, campaigns, touches (issue: the idempotent event API) -----------

SOURCE_SYSTEM_MAX_LENGTH = 100
EXTERNAL_ID_MAX_LENGTH = 200
CAMPAIGN_NAME_MAX_LENGTH = 200
UTM_MAX_LENGTH = 200
CHANNEL_KEY_MAX_LENGTH = 40


class Team(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    SALES = "sales", "Sales"
    PARTNER = "partner", "Partner"


class TouchKind(models.TextChoices):
    VISIT = "visit", "Website visit"
    FORM = "form", "Form submitted"
    EMAIL_OPEN = "email_open", "Email opened"
    EMAIL_CLICK = "email_click", "Email clicked"
    AD_CLICK = "ad_click", "Ad clicked"
    WEBINAR_ATTENDED = "webinar_attended", "Webinar attended"
    EVENT_ATTENDED = "event_attended", "Event attended"
    DOWNLOAD = "download", "Content downloaded"
    CALL = "call", "Call"
    MEETING = "meeting", "Meeting"
    REFERRAL = "referral", "Referral"
    OTHER = "other", "Other"


class Channel(models.Model):
    """Where a touch happened, and which team's work it is (attribution credits teams)."""

    key = models.SlugField(max_length=CHANNEL_KEY_MAX_LENGTH, unique=True)
    team = models.CharField(max_length=16, choices=Team.choices)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["team", "key"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(team__in=Team.values), name="channel_team_valid"
            )
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def label(self) -> str:
        return channel_label(self.key)


class Campaign(models.Model):
    name = models.CharField(max_length=CAMPAIGN_NAME_MAX_LENGTH, unique=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="campaigns")
    utm_source = models.CharField(max_length=UTM_MAX_LENGTH, blank=True, default="")
    utm_medium = models.CharField(max_length=UTM_MAX_LENGTH, blank=True, default="")
    utm_campaign = models.CharField(max_length=UTM_MAX_LENGTH, blank=True, default="")
    cost = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(cost__gte=0), name="campaign_cost_not_negative"
            )
        ]
        # Every form post with a utm_campaign looks its campaign up in any case, as the
        # ORM's iexact does on PostgreSQL (UPPER on both sides).
        indexes = [models.Index(Upper("utm_campaign"), name="campaign_utm_campaign_upper")]

    def __str__(self) -> str:
        return self.name


class Touch(models.Model):
    """One interaction of a person with a channel (and maybe a campaign)."""

    # No index of its own: (contact, occurred_at) below serves lookups by contact.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="touches", db_index=False
    )
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="touches")
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="touches"
    )
    kind = models.CharField(max_length=32, choices=TouchKind.choices, default=TouchKind.OTHER)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    # (source_system, external_id) names a touch in the system that sent it;
    # a repeat of the pair is the same touch. Empty when entered by hand.
    source_system = models.CharField(max_length=SOURCE_SYSTEM_MAX_LENGTH, blank=True, default="")
    # NULL when entered by hand, so hand-entered touches stay out of the constraint.
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001
    # Not indexed: touches are never looked up by who recorded them, and ingest
    # pays for every index.
    recorded_by = models.ForeignKey(
        "auth.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            # Hand-entered and form touches have no external id: out of the index.
            models.UniqueConstraint(
                fields=["source_system", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="touch_external_id_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=TouchKind.values), name="touch_kind_valid"
            ),
        ]
        indexes = [
            # Covering (PostgreSQL): an attribution run reads a buying group's touches
            # from the index alone, not from a heap page per touch. SQLite makes it a
            # plain index on the key columns.
            models.Index(
                fields=["contact", "occurred_at"],
                include=["channel", "campaign", "id"],
                name="touch_contact_time_cover",
            ),
            models.Index(fields=["occurred_at"], name="touch_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} via {self.channel_id}"


# Every column of a new contact but its id, as the writers that insert one by statement
# (contact_create, a new person's form post) name them.
CONTACT_COLUMNS = (
    "email",
    "email_key",
    "first_name",
    "last_name",
    "title",
    "organization_id",
    "score",
    "qualified",
    "created_at",
    "merged_into_id",
    "merged_at",
    "erased_at",
)


# A touch's columns as the set-based writers insert them (the id comes from the
# table's sequence).
TOUCH_COLUMNS = (
    "contact_id",
    "channel_id",
    "campaign_id",
    "kind",
    "occurred_at",
    "recorded_at",
    "source_system",
    "external_id",
    "recorded_by_id",
)


# A consent's and a disclosure's columns as the set-based writers (bulk events, a form's
# answers) insert them; the id comes from the sequence, a new disclosure is not withdrawn.
CONSENT_COLUMNS = (
    "contact_id",
    "purpose",
    "granted",
    "source",
    "notice_version",
    "occurred_at",
    "recorded_at",
    "event_source_system",
    "event_external_id",
)
DISCLOSURE_COLUMNS = (
    "contact_id",
    "key",
    "value",
    "audience",
    "purpose",
    "source",
    "disclosed_at",
    "recorded_at",
    "expires_at",
    "event_source_system",
    "event_external_id",
)


class IdempotencyRecord(models.Model):
    """A caller's ``Idempotency-Key`` and the answer it got, kept 24 hours (Zulip's pattern)."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"


# --- CSV imports of touches -----------------------------------------------------------

IMPORT_FILE_NAME_MAX_LENGTH = 255


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded, waiting for a choice"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportMode(models.TextChoices):
    ALL_OR_NOTHING = "all_or_nothing", "All or nothing"
    VALID_ROWS = "valid_rows", "Import the valid rows"


class ImportJob(models.Model):
    """One uploaded CSV file of touches and what became of each of its rows.

    The file's text is kept here rather than on disk, so a worker on another
    machine can read it and nothing is left behind in a folder. Written only
    by ``contacts.touch_import``.
    """

    created_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField()
    file_name = models.CharField(max_length=IMPORT_FILE_NAME_MAX_LENGTH)
    sha256 = models.CharField(max_length=64)
    content = models.TextField()
    mode = models.CharField(max_length=16, choices=ImportMode.choices, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # [{"row", "field", "message"}]: the preview's findings until the import
    # runs, then the import's.
    errors = models.JSONField(default=list, blank=True)
    # {"created": [[first, last], ...], "duplicate": [...], "rejected": [...]}:
    # row numbers as ranges, so a 50,000-row report stays small.
    row_report = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True, default="")
    # The uploader's column mapping (field -> the file's column name, lower-cased) and the
    # zone of times without an offset, so the run reads the file as the preview did.
    column_map = models.JSONField(default=dict, blank=True)
    time_zone = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ImportStatus.values), name="import_job_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(mode__in=["", *ImportMode.values]),
                name="import_job_mode_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(processed__lte=models.F("total")),
                name="import_job_processed_within_total",
            ),
        ]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="import_job_by_user")]

    def __str__(self) -> str:
        return f"import #{self.pk} of {self.file_name}"

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)


# --- what erasure keeps -------------------------------------------------------------------


class ErasedEmail(models.Model):
    """A keyed hash of an erased person's email and when they were erased: nothing else.

    Lets old data about an erased person (a stale upload, an event sent late)
    be refused instead of bringing them back (docs/erasure.md). The hash is
    HMAC-SHA256 under a key from the settings (``contacts.erasure``), so the
    table alone cannot be reversed by hashing guessed emails.
    """

    email_hash = models.CharField(max_length=64, unique=True)
    # The latest erasure of this email; data dated before it is refused.
    erased_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"erased email {self.email_hash[:12]}…"
