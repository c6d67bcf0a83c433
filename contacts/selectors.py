"""Reads on contacts. Who may see a disclosure is decided here and nowhere else.

``audiences_visible_to`` is the one table of roles to audiences;
``disclosures_visible_to`` applies it, with expiry and withdrawal, and every
page, API view, timeline, search, filter and admin view reads disclosures
through it. The one exception is the privacy officer's subject-access export,
which must show a person everything held about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from leadrecord.dates import duration_text
from leadrecord.models import LedgerAction, LedgerEntry
from leadrecord.remembered import Remembered
from leadrecord.roles import Role, user_roles

from . import signals
from .channels import channel_label
from .models import (
    JOURNEY_STAGE_KEY,
    Audience,
    Campaign,
    Channel,
    Consent,
    ConsentPurpose,
    Contact,
    Disclosure,
    ErasedEmail,
    Organization,
    Touch,
    TouchKind,
)
from .sealing import contact_keys, unseal

UserLike = AbstractBaseUser | AnonymousUser

# Who sees which audience (docs/product.md, promise 2). Integrations see only what
# the person shared with everyone.
_AUDIENCES_BY_ROLE: dict[str, frozenset[str]] = {
    Role.MARKETER: frozenset({Audience.MARKETING, Audience.ALL}),
    Role.SALES_REP: frozenset({Audience.SALES, Audience.ALL}),
    Role.MANAGER: frozenset(Audience.values),
    Role.PRIVACY_OFFICER: frozenset(Audience.values),
    Role.INTEGRATION: frozenset({Audience.ALL}),
}

# Roles that may read contacts at all (docs/api.md, "contacts: read").
CONTACT_READ_ROLES = tuple(Role)
CONTACT_PAGE_ROLES = (Role.MARKETER, Role.SALES_REP, Role.MANAGER, Role.PRIVACY_OFFICER)


def audiences_visible_to(user: UserLike | None) -> frozenset[str]:
    audiences: set[str] = set()
    for role in user_roles(user):
        audiences |= _AUDIENCES_BY_ROLE.get(role, frozenset())
    return frozenset(audiences)


def disclosures_visible_to(
    user: UserLike | None,
    queryset: QuerySet[Disclosure] | None = None,
    *,
    now: datetime | None = None,
    audiences: frozenset[str] | None = None,
) -> QuerySet[Disclosure]:
    """The disclosures ``user`` may see: in its audiences, not withdrawn, not expired.

    ``audiences`` stands in for the user's when the reader is not a user: the
    system, acting on its own (``handoff.services.handoffs_open_on_say_so``),
    passes the audiences it acts for.
    """
    now = now or timezone.now()
    queryset = Disclosure.objects.all() if queryset is None else queryset
    return queryset.filter(
        audience__in=audiences_visible_to(user) if audiences is None else audiences,
        withdrawn_at__isnull=True,
        contact__erased_at__isnull=True,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


# How long a process keeps a channel it read for a write. A channel's id and key never
# change and it is never deleted; its team and whether it is active may, and whatever
# shows or counts them reads them afresh. Forgotten here when this process writes one,
# and when default channels are made again (a flushed test database).
CHANNEL_REMEMBERED_SECONDS = 60.0
_channels_by_key: Remembered[str, Channel] = Remembered(CHANNEL_REMEMBERED_SECONDS)


def channel_for_write(key: str) -> Channel:
    """The channel with this key, for a write that needs its id and key (a form's touch
    names the web channel on every post). ``Channel.DoesNotExist`` if there is none."""
    return _channels_by_key.get(key, lambda: Channel.objects.get(key=key))


def channels_forget() -> None:
    """Channels changed (or were made again): the next write reads them afresh."""
    _channels_by_key.forget()


def organization_find(name: str, domain: str) -> Organization | None:
    """The organization with this domain (normalized) or, without one, the first with this
    name (any case)."""
    # Every form naming an organization asks this: a raw query skips the ORM's query
    # compilation. LOWER on both sides, which the organization_name_lower index serves
    # (and as bulk ingestion matches names).
    table = Organization._meta.db_table
    if domain:
        where, value = "domain = %s", domain
    else:
        where, value = "LOWER(name) = LOWER(%s)", name
    found = Organization.objects.raw(
        f"SELECT * FROM {table} WHERE {where} ORDER BY id LIMIT 1",  # noqa: S608 -- model name
        [value],
    )
    return next(iter(found), None)


def campaign_for_utm(utm_campaign: str) -> Campaign | None:
    """The first campaign whose ``utm_campaign`` is this (any case), with its channel."""
    # Every form post with a utm_campaign asks this: a raw query skips the ORM's
    # query compilation. UPPER on both sides, as the ORM's iexact on PostgreSQL.
    table = Campaign._meta.db_table
    channels = Channel._meta.db_table
    columns = ", ".join(f"{table}.{field.column}" for field in Campaign._meta.concrete_fields)
    found = Campaign.objects.raw(
        f"SELECT {columns}, {channels}.key AS channel_key, {channels}.team AS channel_team, "  # noqa: S608 -- model names
        f"{channels}.active AS channel_active FROM {table} "
        f"JOIN {channels} ON {channels}.id = {table}.channel_id "
        f"WHERE UPPER({table}.utm_campaign) = UPPER(%s) ORDER BY {table}.id LIMIT 1",
        [utm_campaign],
    )
    campaign = next(iter(found), None)
    if campaign is not None:
        extra: Any = campaign
        campaign.channel = Channel(
            id=campaign.channel_id,
            key=extra.channel_key,
            team=extra.channel_team,
            active=bool(extra.channel_active),
        )
    return campaign


def contacts_living() -> QuerySet[Contact]:
    """Contacts that are neither erased nor merged into another."""
    return Contact.objects.filter(erased_at__isnull=True, merged_into__isnull=True)


def contact_erased_at(pk: int) -> datetime | None:
    """When the contact ``pk`` was erased, or None if it never was (or does not exist)."""
    return (
        Contact.objects.filter(pk=pk, erased_at__isnull=False)
        .values_list("erased_at", flat=True)
        .first()
    )


def contacts_for(user: UserLike | None) -> QuerySet[Contact]:
    """Living contacts with ``journey_stage``: the latest stage this user may see."""
    stage = (
        disclosures_visible_to(user)
        .filter(contact=OuterRef("pk"), key=JOURNEY_STAGE_KEY)
        .order_by("-disclosed_at", "-id")
        .values("value")[:1]
    )
    return contacts_living().select_related("organization").annotate(journey_stage=Subquery(stage))


def contacts_with_consent(queryset: QuerySet[Contact], purpose: str) -> QuerySet[Contact]:
    """The people whose latest word on ``purpose`` is a grant."""
    latest = (
        Consent.objects.filter(contact=OuterRef("pk"), purpose=purpose)
        .order_by("-occurred_at", "-id")
        .values("granted")[:1]
    )
    return queryset.annotate(consent_granted=Subquery(latest)).filter(consent_granted=True)


def contacts_search(queryset: QuerySet[Contact], text: str) -> QuerySet[Contact]:
    """Search by name, email, title and organization, never by disclosed values."""
    condition = Q()
    for word in text.split()[:8]:  # more words than this only slow the query down
        condition &= (
            Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(email__icontains=word)
            | Q(title__icontains=word)
            | Q(organization__name__icontains=word)
            | Q(organization__domain__icontains=word)
        )
    return queryset.filter(condition)


def contact_find_by_email(email_key: str) -> Contact | None:
    """The living contact for a normalized email, following merges to the survivor."""
    # Every touch, form and event naming a person by email asks this: a raw
    # query skips the ORM's query compilation. Email keys are unique.
    contact = next(
        iter(
            Contact.objects.raw(
                f"SELECT * FROM {Contact._meta.db_table} WHERE email_key = %s",  # noqa: S608
                [email_key],
            )
        ),
        None,
    )
    while contact is not None and contact.merged_into_id is not None:
        contact = contact.merged_into
    if contact is None or contact.erased_at is not None:
        return None
    return contact


def contact_ids_merged_into(contact: Contact) -> list[int]:
    """The contact's id and those of every contact merged into it, at any depth."""
    ids = [contact.pk]
    frontier = [contact.pk]
    while frontier:
        frontier = list(
            Contact.objects.filter(merged_into_id__in=frontier).values_list("id", flat=True)
        )
        ids.extend(frontier)
    return ids


@dataclass(frozen=True)
class ConsentState:
    purpose: str
    granted: bool
    source: str
    notice_version: str
    occurred_at: datetime | None


def consent_withdrawals_since(moment: datetime) -> int:
    """How many consents were withdrawn (recorded) since ``moment``."""
    return Consent.objects.filter(granted=False, recorded_at__gte=moment).count()


def consents_current(contact: Contact) -> list[ConsentState]:
    """Each purpose's current state: the latest grant or withdrawal, else not granted."""
    latest: dict[str, Consent] = {}
    for consent in Consent.objects.filter(contact=contact).order_by("occurred_at", "id"):
        latest[consent.purpose] = consent
    states = []
    for purpose in ConsentPurpose.values:
        current = latest.get(purpose)
        if current is None:
            states.append(ConsentState(purpose, False, "", "", None))
        else:
            states.append(
                ConsentState(
                    purpose,
                    current.granted,
                    current.source,
                    current.notice_version,
                    current.occurred_at,
                )
            )
    return states


def consent_history(contact: Contact) -> QuerySet[Consent]:
    return Consent.objects.filter(contact=contact).order_by("occurred_at", "id")


def contact_disclosures_for(user: UserLike | None, contact: Contact) -> QuerySet[Disclosure]:
    return disclosures_visible_to(user, Disclosure.objects.filter(contact=contact)).order_by(
        "disclosed_at", "id"
    )


# --- the timeline -----------------------------------------------------------


def contact_timeline_entries(
    contact: Contact, user: UserLike | None = None
) -> QuerySet[LedgerEntry]:
    """Ledger entries about the contact (and those merged into it), by when they happened.

    Given the reader, without the entries about subjects it may not know of;
    without one, the whole record (for the system's own reads).
    """
    ids = contact_ids_merged_into(contact)
    entries = LedgerEntry.objects.filter(contact_id__in=ids)
    if user is not None:
        hidden: dict[str, set[str]] = {}
        # The apps above name the subjects the reader may not know of (the handoff
        # app: handoffs whose say-so is outside the reader's audience).
        for _, subjects in signals.timeline_hidden_subjects.send(
            sender=Contact, user=user, contact_ids=ids
        ):
            for subject_type, subject_id in cast("list[tuple[str, int]]", subjects):
                hidden.setdefault(subject_type, set()).add(str(subject_id))
        for subject_type, subject_ids in hidden.items():
            entries = entries.exclude(subject_type=subject_type, subject_id__in=subject_ids)
    # When things happened; entries of the same moment in the order they were recorded.
    return entries.order_by("occurred_at", "seq")


@dataclass(frozen=True)
class TimelineItem:
    seq: int
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    action: str
    summary: str

    @property
    def recorded_late(self) -> bool:
        """Recorded in another minute than it happened (a back-dated or imported entry)."""
        return abs(self.recorded_at - self.occurred_at) >= timedelta(minutes=1)


def _consent_summary(after: dict[str, Any]) -> str:
    purpose_key = str(after.get("purpose", ""))
    purpose = (
        ConsentPurpose(purpose_key).label.lower()
        if purpose_key in ConsentPurpose.values
        else purpose_key.replace("_", " ")
    )
    state = "granted" if after.get("granted") else "withdrawn"
    notice = f", notice {after['notice_version']}" if after.get("notice_version") else ""
    return f"Consent to {purpose} {state} (source: {after.get('source', '')}{notice})"


def timeline_items(user: UserLike | None, entries: Sequence[LedgerEntry]) -> list[TimelineItem]:
    """Readable summaries of ``entries``, showing disclosed values only where ``user`` may.

    A disclosure's value is shown only when the disclosure is in
    ``disclosures_visible_to(user)`` now; otherwise the item says that
    something was disclosed, to whom, without the value.
    """
    disclosure_ids = {
        int(entry.subject_id)
        for entry in entries
        if entry.subject_type == "disclosure" and entry.subject_id.isdigit()
    }
    # A handoff's say-so is shown as its stage disclosure is.
    disclosure_ids |= {
        entry.after["say_so_disclosure"]
        for entry in entries
        if entry.action == LedgerAction.HANDOFF_CREATE
        and isinstance(entry.after, dict)
        and isinstance(entry.after.get("say_so_disclosure"), int)
    }
    visible_ids = set(
        disclosures_visible_to(user).filter(id__in=disclosure_ids).values_list("id", flat=True)
    )
    sees_all = audiences_visible_to(user) == frozenset(Audience.values)
    keys = contact_keys(entry.contact_id for entry in entries if entry.contact_id is not None)
    names = _Names(
        campaigns=dict(
            Campaign.objects.filter(
                pk__in={
                    entry.after["campaign"]
                    for entry in entries
                    if entry.action == LedgerAction.TOUCH_RECORD
                    and isinstance(entry.after, dict)
                    and isinstance(entry.after.get("campaign"), int)
                }
            ).values_list("pk", "name")
        )
    )
    items = []
    for entry in entries:
        after = entry.after if isinstance(entry.after, dict) else {}
        sealed = unseal(
            key=keys.get(entry.contact_id or 0), contact_id=entry.contact_id or 0, payload=after
        )
        items.append(
            TimelineItem(
                seq=entry.seq,
                occurred_at=entry.occurred_at,
                recorded_at=entry.recorded_at,
                actor=entry.actor_label,
                action=entry.action,
                summary=_summary(entry, after, sealed, visible_ids, sees_all, names),
            )
        )
    return items


def _summary(
    entry: LedgerEntry,
    after: dict[str, Any],
    sealed: dict[str, Any],
    visible_ids: set[int],
    sees_all: bool,
    names: _Names,
) -> str:
    action = entry.action
    if action == LedgerAction.HANDOFF_CREATE:
        return _handoff_create_summary(entry, after, _say_so_shown(after, visible_ids, sees_all))
    if action == LedgerAction.CONTACT_CREATE:
        who = " ".join(filter(None, [sealed.get("first_name"), sealed.get("last_name")]))
        email = sealed.get("email")
        if email:
            return f"Contact created: {who} <{email}>".replace(":  <", ": <")
        return "Contact created"
    if action == LedgerAction.CONSENT_RECORD:
        return _consent_summary(after)
    if action == LedgerAction.DISCLOSURE_RECORD:
        audience = after.get("audience", "")
        key = after.get("key", "")
        visible = entry.subject_id.isdigit() and int(entry.subject_id) in visible_ids
        if visible and "value" in sealed:
            return f"Disclosed {key} to {audience}: {sealed['value']}"
        return f"Disclosed {key} to {audience} (value not shown)"
    if action == LedgerAction.DISCLOSURE_WITHDRAW:
        return f"Withdrew the disclosure of {after.get('key', '')}"
    if action == LedgerAction.CONTACT_MERGE:
        return "Another record of this person was merged into this one"
    if action == LedgerAction.CONTACT_EXPORT:
        return "Subject-access export produced"
    if action == LedgerAction.CONTACT_ERASE:
        return "Personal data erased"
    if action == LedgerAction.TOUCH_RECORD:
        return _touch_summary(after, names)
    if action in _SUMMARIES_BY_ACTION:
        return _SUMMARIES_BY_ACTION[action](entry, after, sealed)
    summary = after.get("summary")
    return str(summary) if summary else action


@dataclass(frozen=True)
class _Names:
    """What the timeline's summaries call things by, looked up once per page."""

    campaigns: dict[int, str]


def _touch_summary(after: dict[str, Any], names: _Names) -> str:
    kind = str(after.get("kind", ""))
    kind_text = TouchKind(kind).label if kind in TouchKind.values else kind.replace("_", " ")
    campaign_id = after.get("campaign")
    campaign = ""
    if campaign_id:
        campaign = f", campaign “{names.campaigns.get(campaign_id, 'no longer on record')}”"
    return f"Touch: {kind_text} via {channel_label(str(after.get('channel', '')))}{campaign}"


def _qualify_summary(entry: LedgerEntry, after: dict[str, Any], sealed: dict[str, Any]) -> str:
    state = "Qualified" if after.get("qualified") else "No longer qualified"
    return (
        f"{state}: score {after.get('score')} against a threshold of {after.get('threshold')} "
        f"(ruleset v{after.get('ruleset_version')})"
    )


def _say_so_shown(after: dict[str, Any], visible_ids: set[int], sees_all: bool) -> bool:
    """Whether the reader may see what gave a handoff its say-so (as on the handoff)."""
    disclosure_id = after.get("say_so_disclosure")
    if isinstance(disclosure_id, int):
        return disclosure_id in visible_ids
    if str(after.get("buyer_signal", "")).startswith("consent:"):
        return True  # every role sees consents
    # A stage handoff recorded before its disclosure was kept.
    return sees_all


def _handoff_create_summary(entry: LedgerEntry, after: dict[str, Any], say_so_shown: bool) -> str:
    say_so = after.get("buyer_signal") if say_so_shown else "not shown"
    say_so_text = _SAY_SO_LABELS.get(str(say_so), str(say_so))
    return (
        f"Handed off to sales (score {after.get('score')}, ruleset "
        f"v{after.get('ruleset_version')}, say-so: {say_so_text})"
    )


def _handoff_summary(entry: LedgerEntry, after: dict[str, Any], sealed: dict[str, Any]) -> str:
    late = ""
    if after.get("late") and isinstance(after.get("late_by_seconds"), int):
        late = f", {duration_text(timedelta(seconds=after['late_by_seconds']))} after the SLA"
    if entry.action == LedgerAction.HANDOFF_ACCEPT:
        return f"Handoff accepted{late}; owner {after.get('owner')}"
    if entry.action == LedgerAction.HANDOFF_REJECT:
        note = f": {sealed['note']}" if sealed.get("note") else ""
        reason = _REJECT_REASON_LABELS.get(str(after.get("reason")), after.get("reason"))
        return f"Handoff rejected ({reason}{late}){note}; back with marketing"
    return f"Handoff expired: {entry.reason} Back with marketing."


def _deal_member_summary(entry: LedgerEntry, after: dict[str, Any], sealed: dict[str, Any]) -> str:
    role = str(after.get("role", "")).replace("_", " ")
    return f"In the buying group of the deal “{after.get('name')}” as {role}"


_SAY_SO_LABELS = {
    "consent:sales_contact": "consented to sales contact",
    "stage:ready_to_talk": "said they are ready to talk",
}
# The handoff app's reasons (contacts sits below it and cannot import them).
_REJECT_REASON_LABELS = {
    "not_a_fit": "not a fit",
    "no_budget": "no budget",
    "bad_timing": "bad timing",
    "duplicate": "duplicate",
    "unreachable": "unreachable",
    "other": "other",
}

_SUMMARIES_BY_ACTION: dict[str, Any] = {
    LedgerAction.CONTACT_QUALIFY: _qualify_summary,
    LedgerAction.CONTACT_UNQUALIFY: _qualify_summary,
    LedgerAction.HANDOFF_ACCEPT: _handoff_summary,
    LedgerAction.HANDOFF_REJECT: _handoff_summary,
    LedgerAction.HANDOFF_EXPIRE: _handoff_summary,
    LedgerAction.DEAL_MEMBER_ADD: _deal_member_summary,
    # The buyer's own doings (the buyers app, above): what the ledger says in plain.
    LedgerAction.FORM_SUBMIT: lambda entry, after, sealed: (
        f"Sent the form {after.get('form', '')}"
        + (" (from a browser shared with someone else)" if after.get("shared_device") else "")
    ),
    LedgerAction.PORTAL_ENTER: lambda entry, after, sealed: "Signed in to their portal",
    LedgerAction.ERASURE_REQUEST: lambda entry, after, sealed: "Asked to be erased",
}


# --- subject access ---------------------------------------------------------


def contact_subject_access_data(contact: Contact) -> dict[str, Any]:
    """Everything held about the person, for the privacy officer's export.

    This alone reads past ``disclosures_visible_to``: a person is owed every
    disclosure, including withdrawn and expired ones, and every consent.
    """
    ids = contact_ids_merged_into(contact)
    people = Contact.objects.filter(id__in=ids).select_related("organization").order_by("id")
    keys = contact_keys(ids)
    entries = list(LedgerEntry.objects.filter(contact_id__in=ids).order_by("seq"))
    record = []
    for entry in entries:
        after = entry.after if isinstance(entry.after, dict) else {}
        sealed = unseal(
            key=keys.get(entry.contact_id or 0), contact_id=entry.contact_id or 0, payload=after
        )
        clear = {k: v for k, v in after.items() if k != "sealed"}
        record.append(
            {
                "seq": entry.seq,
                "occurred_at": entry.occurred_at.isoformat(),
                "recorded_at": entry.recorded_at.isoformat(),
                "actor": entry.actor_label,
                "action": entry.action,
                "details": {**clear, **sealed},
            }
        )
    return {
        "generated_at": timezone.now().isoformat(),
        "contact": _person(contact),
        "merged_contacts": [_person(person) for person in people if person.pk != contact.pk],
        "consents": [
            {
                "purpose": consent.purpose,
                "granted": consent.granted,
                "source": consent.source,
                "notice_version": consent.notice_version,
                "occurred_at": consent.occurred_at.isoformat(),
                "recorded_at": consent.recorded_at.isoformat(),
            }
            for consent in Consent.objects.filter(contact_id__in=ids).order_by("occurred_at", "id")
        ],
        "disclosures": [
            {
                "id": disclosure.pk,
                "key": disclosure.key,
                "value": disclosure.value,
                "audience": disclosure.audience,
                "purpose": disclosure.purpose,
                "source": disclosure.source,
                "disclosed_at": disclosure.disclosed_at.isoformat(),
                "expires_at": _iso(disclosure.expires_at),
                "withdrawn_at": _iso(disclosure.withdrawn_at),
            }
            for disclosure in Disclosure.objects.filter(contact_id__in=ids).order_by(
                "disclosed_at", "id"
            )
        ],
        "record": record,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _person(contact: Contact) -> dict[str, Any]:
    organization = contact.organization
    return {
        "id": contact.pk,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "title": contact.title,
        "organization": (
            {"id": organization.pk, "name": organization.name, "domain": organization.domain}
            if organization
            else None
        ),
        "created_at": contact.created_at.isoformat(),
    }


# --- channels, campaigns, touches -------------------------------------------------


def organizations_all() -> QuerySet[Organization]:
    return Organization.objects.order_by("name", "id")


def channels_all() -> QuerySet[Channel]:
    return Channel.objects.order_by("team", "key")


def campaigns_all() -> QuerySet[Campaign]:
    return Campaign.objects.select_related("channel").order_by("-created_at", "-id")


def touches_visible() -> QuerySet[Touch]:
    """Touches of living contacts (a touch holds no disclosed value)."""
    return Touch.objects.filter(contact__erased_at__isnull=True).select_related("channel")


def erased_email_rows(digests: list[str]) -> list[tuple[str, datetime]]:
    """(email hash, erased at) of each erased email among these HMAC digests."""
    # Every batch of POST events/ asks this: one array parameter on PostgreSQL keeps
    # bench/ingest.py's bulk rate; elsewhere (the embedded SQLite default) the ORM's.
    if connection.vendor != "postgresql":
        return list(
            ErasedEmail.objects.filter(email_hash__in=digests).values_list(
                "email_hash", "erased_at"
            )
        )
    # One array parameter rather than an IN list of hundreds, as
    # events.ingest looks people up (the same measured cost).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT email_hash, erased_at FROM {ErasedEmail._meta.db_table} "  # noqa: S608
            "WHERE email_hash = ANY(%s::varchar[])",
            [digests],
        )
        return [(row[0], row[1]) for row in cursor.fetchall()]


def touches_listed() -> QuerySet[Touch]:
    """Touches of living people for a list, with who, where and which campaign."""
    return touches_visible().select_related("contact", "campaign")
