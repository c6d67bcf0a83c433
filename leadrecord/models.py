"""The ledger: one append-only, hash-chained record of every write.

Entries are only ever inserted, by ``leadrecord.ledger.ledger_append`` and
``ledger_append_many``. The database refuses ``UPDATE`` and ``DELETE`` on the
table through triggers installed by a migration (``leadrecord.ledger_guard``),
and each entry's hash covers its content and the previous entry's hash, so an
entry altered behind the triggers' back is caught by ``verify_ledger``.
"""

from django.conf import settings
from django.db import models


class ActorKind(models.TextChoices):
    USER = "user", "User"
    INTEGRATION = "integration", "Integration"
    SYSTEM = "system", "System"
    # The person on record themself: a form they sent, a change in their portal.
    PERSON = "person", "The person"


class LedgerAction(models.TextChoices):
    """Every action the ledger records: what a service did, as ``subject.verb``.

    Writers pass a member, never a string built at run time, so the list of
    what the ledger can say is this one.
    """

    ORGANIZATION_CREATE = "organization.create", "Organization created"
    CONTACT_CREATE = "contact.create", "Person created"
    CONTACT_MERGE = "contact.merge", "People merged"
    CONTACT_ERASE = "contact.erase", "Person erased"
    CONTACT_EXPORT = "contact.export", "Person's data exported"
    CONTACT_QUALIFY = "contact.qualify", "Person qualified"
    CONTACT_UNQUALIFY = "contact.unqualify", "Person no longer qualified"
    CONTACT_ORGANIZATION_MOVE = "contact.organization_move", "Person moved to another organization"
    CONSENT_RECORD = "consent.record", "Consent recorded"
    DISCLOSURE_RECORD = "disclosure.record", "Disclosure recorded"
    DISCLOSURE_WITHDRAW = "disclosure.withdraw", "Disclosure withdrawn"
    CHANNEL_CREATE = "channel.create", "Channel created"
    CHANNEL_UPDATE = "channel.update", "Channel changed"
    CAMPAIGN_CREATE = "campaign.create", "Campaign created"
    TOUCH_RECORD = "touch.record", "Touch recorded"
    TOUCH_IMPORT_START = "touch_import.start", "Touch import started"
    TOUCH_IMPORT_FINISH = "touch_import.finish", "Touch import finished"
    RULESET_CREATE = "ruleset.create", "Ruleset drafted"
    RULESET_UPDATE = "ruleset.update", "Ruleset changed"
    RULESET_ACTIVATE = "ruleset.activate", "Ruleset activated"
    RULESET_RETIRE = "ruleset.retire", "Ruleset retired"
    HANDOFF_CREATE = "handoff.create", "Handoff opened"
    HANDOFF_ACCEPT = "handoff.accept", "Handoff accepted"
    HANDOFF_REJECT = "handoff.reject", "Handoff rejected"
    HANDOFF_EXPIRE = "handoff.expire", "Handoff expired"
    DEAL_CREATE = "deal.create", "Deal created"
    DEAL_MEMBER_ADD = "deal.member_add", "Person added to a deal"
    DEAL_OVERRIDE_SOURCE = "deal.override_source", "Deal's source overridden"
    SALE_RECORD = "sale.record", "Sale event recorded"
    TARGET_SET = "target.set", "Target set"
    ATTRIBUTION_RUN = "attribution.run", "Attribution run"
    USER_CREATE = "user.create", "User created"
    USER_UPDATE = "user.update", "User changed"
    TOKEN_ISSUE = "token.issue", "API token issued"
    TOKEN_REVOKE = "token.revoke", "API token revoked"
    FORM_CREATE = "form.create", "Form created"
    FORM_UPDATE = "form.update", "Form changed"
    FORM_SUBMIT = "form.submit", "Form sent"
    PORTAL_ENTER = "portal.enter", "Person signed in to their portal"
    ERASURE_REQUEST = "erasure.request", "Erasure requested by the person"
    WEBHOOK_ENDPOINT_CREATE = "webhook_endpoint.create", "Webhook endpoint added"
    WEBHOOK_SECRET_ROTATE = "webhook_endpoint.rotate_secret", "Webhook secret rotated"
    WEBHOOK_ENDPOINT_DISABLE = "webhook_endpoint.disable", "Webhook endpoint disabled"
    WEBHOOK_ENDPOINT_ENABLE = "webhook_endpoint.enable", "Webhook endpoint enabled"
    WEBHOOK_REPLAY = "webhook_endpoint.replay", "Webhook messages replayed"


class LedgerEntry(models.Model):
    # Assigned under the ledger lock as the previous seq + 1: no gaps, no forks.
    seq = models.PositiveBigIntegerField(primary_key=True)
    occurred_at = models.DateTimeField(help_text="When it happened (may be back-filled).")
    recorded_at = models.DateTimeField(help_text="When the ledger recorded it.")
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    # PROTECT: a user who acted stays; the ledger itself can never be updated
    # to null the reference. Not indexed: nothing reads entries by actor, and
    # every index costs each append.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    subject_type = models.CharField(max_length=64)
    subject_id = models.CharField(max_length=64)
    # A plain id rather than a foreign key: erasure of a person must not touch
    # the ledger, and the timeline reads entries by this column.
    contact_id = models.BigIntegerField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    prev_hash = models.CharField(max_length=64)
    # Not indexed: nothing looks entries up by hash, and every index costs
    # each append; prev_hash's unique index already refuses a fork.
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["contact_id", "seq"], name="ledger_contact_seq"),
            models.Index(fields=["subject_type", "subject_id"], name="ledger_subject"),
        ]
        constraints = [
            # A second entry claiming the same predecessor would be a fork.
            models.UniqueConstraint(fields=["prev_hash"], name="ledger_prev_hash_unique"),
            models.CheckConstraint(
                condition=models.Q(actor_kind__in=ActorKind.values), name="ledger_actor_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.subject_type}:{self.subject_id}"


class LedgerCheckpoint(models.Model):
    """A signed statement of the ledger's head: entry ``seq`` had hash ``hash`` at ``signed_at``.

    The copies that count are the files under ``LEDGER_CHECKPOINT_DIR`` and those
    auditors keep (``GET ledger/checkpoints/latest/`` serves this row for them):
    ``verify_ledger --checkpoint FILE`` proves the ledger still extends one. The
    application's database role may only insert and read these rows.
    """

    seq = models.PositiveBigIntegerField(help_text="The head entry's seq (0: the empty ledger).")
    hash = models.CharField(max_length=64, help_text="The head entry's hash.")
    # Kept as signed: the signature covers this exact text.
    signed_at = models.CharField(max_length=40, help_text="When it was signed (ISO-8601, UTC).")
    signature = models.CharField(max_length=100, help_text="Ed25519 signature, base64.")
    public_key = models.CharField(max_length=60, help_text="Ed25519 public key, base64.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} at {self.signed_at}"


class PeriodicClaim(models.Model):
    """One due moment (``slot``) of one periodic job, claimed by the process that runs it.

    With no broker, the web processes run the periodic jobs themselves
    (``leadrecord.periodic``); the unique (job, slot) is what lets only one of
    them run each due moment.
    """

    job = models.CharField(max_length=200)
    slot = models.DateTimeField(help_text="The scheduled moment this run stands for.")
    claimed_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # "baseline" marks the first sight of a job (nothing ran), then "running", "ok", "failed".
    outcome = models.CharField(max_length=16, default="running")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-slot"]
        constraints = [
            models.UniqueConstraint(fields=["job", "slot"], name="periodic_claim_job_slot_unique")
        ]

    def __str__(self) -> str:
        return f"{self.job} at {self.slot.isoformat()} ({self.outcome})"
