"""The buyer's side, written: forms published and changed, forms sent, visitors linked.

Each service runs in one transaction and appends to the ledger; what a person
sends lands on the record through the contacts services (``contact_create``,
``consent_record``, ``disclosure_record``, ``touch_record``), so the rules,
ledger payloads and signals (scoring, a ``ready_to_talk`` told to sales alone
opening a handoff) are the same as by every other path.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from contacts import rules as contact_rules
from contacts.models import (
    JOURNEY_STAGE_KEY,
    NOTICE_VERSION_MAX_LENGTH,
    Audience,
    Campaign,
    Channel,
    ConsentPurpose,
    Contact,
    DisclosurePurpose,
    DisclosureSource,
    TouchKind,
)
from contacts.sealing import contact_keys
from contacts.selectors import campaign_for_utm, channel_for_write, consents_current
from contacts.services import (
    ConsentInput,
    DisclosureInput,
    OrganizationInput,
    contact_create,
    person_answers_record,
    touch_record,
)
from handoff.selectors import ruleset_active_remember
from leadrecord.bulk import row_insert_under_parent
from leadrecord.errors import InvalidInput
from leadrecord.ledger import (
    Actor,
    LedgerRedo,
    ledger_append,
    ledger_deferred,
    ledger_lock,
    ledger_lock_or_recheck,
)
from leadrecord.models import LedgerAction

from .bulk import (
    FORM_NOT_PUBLISHED,
    NewPersonRead,
    new_person_form_write,
    new_person_read,
)
from .ledger_payloads import form_submission_ledger_payload
from .models import (
    FORM_INTRO_MAX_LENGTH,
    FORM_SLUG_MAX_LENGTH,
    FORM_SUBMISSION_COLUMNS,
    FORM_TITLE_MAX_LENGTH,
    NOTICE_MAX_LENGTH,
    BuyerForm,
    ErasureRequest,
    FormSubmission,
    PortalLink,
    Visit,
    Visitor,
)

# A form asks a handful of things; more is a mistake, not a form.
FORM_DISCLOSURES_MAX = 20
DISCLOSURE_LABEL_MAX_LENGTH = 200
# The channel of a form touch whose campaign names none (a default channel).
FORM_CHANNEL_KEY = "web"
VISIT_SOURCE_SYSTEM = "leadrecord-visit"
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


# --- forms ----------------------------------------------------------------------------


def _consents_clean(consents: Any) -> list[dict[str, str]]:
    if not isinstance(consents, list):
        raise InvalidInput("invalid", "Consents are a list.", attr="consents")
    cleaned: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in consents:
        if not isinstance(item, dict):
            raise InvalidInput(
                "invalid", "Each consent is {purpose, notice, version}.", attr="consents"
            )
        purpose = str(item.get("purpose", ""))
        notice = str(item.get("notice", "")).strip()
        version = str(item.get("version", "")).strip()
        if purpose not in ConsentPurpose.values:
            raise InvalidInput(
                "invalid_choice",
                f"A consent's purpose is one of {', '.join(ConsentPurpose.values)}.",
                attr="consents",
            )
        if purpose in seen:
            raise InvalidInput("unique", f"The consent {purpose} is asked twice.", attr="consents")
        if not notice or len(notice) > NOTICE_MAX_LENGTH:
            raise InvalidInput(
                "invalid",
                f"Each consent needs its notice text (at most {NOTICE_MAX_LENGTH} characters).",
                attr="consents",
            )
        if not version or len(version) > NOTICE_VERSION_MAX_LENGTH:
            raise InvalidInput(
                "invalid",
                f"Each consent needs its notice's version (at most "
                f"{NOTICE_VERSION_MAX_LENGTH} characters).",
                attr="consents",
            )
        seen.add(purpose)
        cleaned.append({"purpose": purpose, "notice": notice, "version": version})
    return cleaned


def _disclosures_clean(disclosures: Any) -> list[dict[str, str]]:
    if not isinstance(disclosures, list):
        raise InvalidInput("invalid", "Disclosures are a list.", attr="disclosures")
    if len(disclosures) > FORM_DISCLOSURES_MAX:
        raise InvalidInput(
            "max_length",
            f"A form asks at most {FORM_DISCLOSURES_MAX} disclosures.",
            attr="disclosures",
        )
    cleaned: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in disclosures:
        if not isinstance(item, dict):
            raise InvalidInput("invalid", "Each disclosure is {key, label}.", attr="disclosures")
        key = str(item.get("key", "")).strip()
        label = str(item.get("label", "")).strip() or key.replace("_", " ").capitalize()
        if not contact_rules.disclosure_key_valid(key):
            raise InvalidInput("invalid", contact_rules.DISCLOSURE_KEY_INVALID, attr="disclosures")
        if key in seen:
            raise InvalidInput(
                "unique", f"The disclosure {key} is asked twice.", attr="disclosures"
            )
        if len(label) > DISCLOSURE_LABEL_MAX_LENGTH:
            raise InvalidInput(
                "max_length",
                f"A label has at most {DISCLOSURE_LABEL_MAX_LENGTH} characters.",
                attr="disclosures",
            )
        seen.add(key)
        cleaned.append({"key": key, "label": label})
    return cleaned


def _form_fields_check(*, slug: str, title: str, intro: str, purpose: str) -> None:
    if not slug or len(slug) > FORM_SLUG_MAX_LENGTH or not _SLUG.fullmatch(slug):
        raise InvalidInput(
            "invalid",
            "A slug is lower-case letters, digits and hyphens, e.g. spring-webinar.",
            attr="slug",
        )
    if not title or len(title) > FORM_TITLE_MAX_LENGTH:
        raise InvalidInput(
            "invalid", f"A title has 1 to {FORM_TITLE_MAX_LENGTH} characters.", attr="title"
        )
    if len(intro) > FORM_INTRO_MAX_LENGTH:
        raise InvalidInput(
            "max_length", f"The intro has at most {FORM_INTRO_MAX_LENGTH} characters.", attr="intro"
        )
    if purpose not in DisclosurePurpose.values:
        raise InvalidInput(
            "invalid_choice",
            f"The purpose is one of {', '.join(DisclosurePurpose.values)}.",
            attr="purpose",
        )


def form_ledger_payload(form: BuyerForm) -> dict[str, Any]:
    return {
        "slug": form.slug,
        "title": form.title,
        "ask_names": form.ask_names,
        "ask_organization": form.ask_organization,
        "consents": form.consents,
        "disclosures": form.disclosures,
        "purpose": form.purpose,
        "campaign": form.campaign_id,
        "published": form.published,
    }


def buyer_form_create(
    *,
    slug: str,
    title: str,
    intro: str = "",
    ask_names: bool = True,
    ask_organization: bool = True,
    consents: Any = (),
    disclosures: Any = (),
    purpose: str = DisclosurePurpose.QUALIFICATION,
    campaign: Campaign | None = None,
    published: bool = True,
    actor: Actor,
    created_by: AbstractBaseUser | AnonymousUser | None = None,
) -> BuyerForm:
    """A new form (marketers, managers); slugs are unique and never change once sent to."""
    slug, title, intro = slug.strip(), title.strip(), intro.strip()
    _form_fields_check(slug=slug, title=title, intro=intro, purpose=purpose)
    clean_consents = _consents_clean(list(consents))
    clean_disclosures = _disclosures_clean(list(disclosures))
    with transaction.atomic():
        if BuyerForm.objects.filter(slug=slug).exists():
            raise InvalidInput("unique", f"A form with the slug {slug!r} exists.", attr="slug")
        form = BuyerForm.objects.create(
            slug=slug,
            title=title,
            intro=intro,
            ask_names=ask_names,
            ask_organization=ask_organization,
            consents=clean_consents,
            disclosures=clean_disclosures,
            purpose=purpose,
            campaign=campaign,
            published=published,
            created_at=timezone.now(),
            created_by_id=(
                created_by.pk if created_by is not None and created_by.is_authenticated else None
            ),
        )
        ledger_append(
            actor=actor,
            action=LedgerAction.FORM_CREATE,
            subject_type="form",
            subject_id=form.pk,
            after=form_ledger_payload(form),
        )
    return form


def buyer_form_publish(*, form: BuyerForm, published: bool, actor: Actor) -> BuyerForm:
    """Publish or unpublish a form: an unpublished form's page is gone (404)."""
    with transaction.atomic():
        form = BuyerForm.objects.select_for_update().get(pk=form.pk)
        before = {"published": form.published}
        form.published = published
        form.save(update_fields=["published"])
        ledger_append(
            actor=actor,
            action=LedgerAction.FORM_UPDATE,
            subject_type="form",
            subject_id=form.pk,
            before=before,
            after={"published": published},
        )
    return form


# --- a form sent ----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One disclosure as the buyer gave it: the value and who they share it with."""

    value: str
    audience: str


@dataclass(frozen=True)
class FormInput:
    """What the person typed and ticked."""

    email: str
    first_name: str = ""
    last_name: str = ""
    organization: str = ""
    consents: frozenset[str] = frozenset()
    answers: dict[str, Answer] = field(default_factory=dict)


@dataclass(frozen=True)
class Arrival:
    """Where the form was sent from: the page, the referrer, UTM fields and click ids."""

    page_url: str = ""
    referrer: str = ""
    utm: dict[str, str] = field(default_factory=dict)
    click_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    submission: FormSubmission
    # A new visitor id to set in the browser (analytics consent given, none yet).
    visitor_token: str | None


def _analytics_granted(contact: Contact) -> bool:
    return any(
        state.purpose == ConsentPurpose.ANALYTICS and state.granted
        for state in consents_current(contact)
    )


def visitor_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def visitor_for_token(token: str | None) -> Visitor | None:
    if not token:
        return None
    return Visitor.objects.filter(token_hash=visitor_token_hash(token)).first()


def _campaign_for(form: BuyerForm, utm_campaign: str) -> Campaign | None:
    if utm_campaign:
        found = campaign_for_utm(utm_campaign)
        if found is not None:
            return found
    if form.campaign_id is None:
        return None
    return Campaign.objects.select_related("channel").get(pk=form.campaign_id)


# Asked on every answer of every post: once, not a list made each time.
_AUDIENCES = frozenset(Audience.values)


def _answers_check(form: BuyerForm, answers: dict[str, Answer]) -> None:
    asked = {item["key"] for item in form.disclosures}
    for key, answer in answers.items():
        if key not in asked:
            raise InvalidInput("invalid", "This form does not ask that.", attr=key)
        if answer.audience not in _AUDIENCES:
            raise InvalidInput(
                "invalid_choice", "Choose who may see this.", attr=f"{key}__audience"
            )
        if len(answer.value) > 2000:
            raise InvalidInput("max_length", "At most 2000 characters.", attr=key)
        if key == JOURNEY_STAGE_KEY:
            contact_rules.disclosure_check(
                key=key,
                value=answer.value,
                audience=answer.audience,
                purpose=form.purpose,
                source=DisclosureSource.FORM,
                expires_at=None,
                disclosed_at=timezone.now(),
            )


def form_submit(
    *,
    form: BuyerForm,
    data: FormInput,
    arrival: Arrival,
    visitor_token: str | None = None,
    occurred_at: datetime | None = None,
) -> Sent:
    """A person sent a form: all of it on the record in one transaction, or nothing.

    The person is matched or created by email, never by the browser: a new email
    from a browser that sent a form for someone else is a new person, and the
    submission is flagged ``shared_device``. Ticked consents are granted with the
    notice's version (an unticked box withdraws nothing); answered disclosures are
    recorded with the audience the buyer chose, source ``form`` and the form's
    purpose; a ``form`` touch names the campaign that ``utm_campaign`` names (else
    the form's). With analytics consent the browser's visitor id is linked to the
    person (or made). The actor on the ledger is the person.
    """
    if not form.published:
        raise InvalidInput(FORM_NOT_PUBLISHED, "This form is not published.", attr="form")
    _answers_check(form, data.answers)
    offered = {item["purpose"]: item for item in form.consents}
    for purpose in data.consents:
        if purpose not in offered:
            raise InvalidInput("invalid", "This form does not ask that.", attr=f"consent_{purpose}")
    write = _FormWrite(
        form=form,
        data=data,
        arrival=arrival,
        visitor_token=visitor_token,
        occurred_at=occurred_at,
    )
    try:
        return write.run(defer=True)
    except LedgerRedo:
        # Something it read without the lock changed before its entries were chained
        # (or the lock was long in coming): undone, and sent again with the lock first.
        return write.run(defer=False)


@dataclass(frozen=True)
class _FormWrite:
    """``form_submit``'s transaction, checked and ready to run (twice, if redone)."""

    form: BuyerForm
    data: FormInput
    arrival: Arrival
    visitor_token: str | None
    occurred_at: datetime | None

    def _where(self, campaign: Campaign | None) -> tuple[Campaign | None, Channel]:
        """The touch's campaign (``utm_campaign``'s, else the form's) and channel."""
        channel = campaign.channel if campaign is not None else channel_for_write(FORM_CHANNEL_KEY)
        return campaign, channel

    def run(self, *, defer: bool) -> Sent:
        """The writes. ``defer``: a new person's rows are written before the ledger lock,
        their entries chained at the end under it (``leadrecord.ledger.ledger_deferred``),
        so other form posts wait on this one only for that; a known person or a browser
        with a visitor id takes the lock at once, as every other writer does."""
        utm_campaign = self.arrival.utm.get("utm_campaign", "")
        # A browser without a visitor id may be a new person's: one read inside the
        # transaction finds the campaign and all their post needs (buyers.bulk).
        fast = defer and not self.visitor_token and connection.vendor == "postgresql"
        if not fast:
            campaign, channel = self._where(_campaign_for(self.form, utm_campaign))
        with transaction.atomic():
            read = None
            if fast:
                read = new_person_read(
                    form=self.form,
                    data=self.data,
                    occurred_at=self.occurred_at,
                    utm_campaign=utm_campaign,
                )
                campaign, channel = self._where(read.campaign)
            head_seq = read.head_seq if read is not None else None
            with ledger_deferred(head_seq=head_seq) if defer else nullcontext() as deferring:
                if deferring and read is not None and read.ids is not None:
                    return self._write_new_person(read, campaign, channel)
                return self._write(campaign, channel)

    def _write_new_person(
        self, read: NewPersonRead, campaign: Campaign | None, channel: Channel
    ) -> Sent:
        new_token: str | None = None
        if ConsentPurpose.ANALYTICS in self.data.consents:
            new_token = secrets.token_urlsafe(24)
        submission = new_person_form_write(
            read,
            form=self.form,
            data=self.data,
            arrival=self.arrival,
            occurred_at=self.occurred_at,
            campaign=campaign,
            channel=channel,
            actor_label=f"form {self.form.slug}",
            visitor_hash=visitor_token_hash(new_token) if new_token else None,
        )
        return Sent(submission=submission, visitor_token=new_token)

    def _write(self, campaign: Campaign | None, channel: Channel) -> Sent:
        form, data, arrival = self.form, self.data, self.arrival
        occurred_at = self.occurred_at
        now = timezone.now()
        when = occurred_at or now
        via = f"form {form.slug}"
        offered = {item["purpose"]: item for item in form.consents}
        # The answers, the touch and a say-so each follow scores under the active
        # ruleset: one read of it serves them all.
        ruleset_active_remember()
        contact, created = contact_create(
            email=data.email,
            first_name=data.first_name,
            last_name=data.last_name,
            organization=OrganizationInput(name=data.organization) if data.organization else None,
            actor=Actor.person(None, via),
            occurred_at=occurred_at,
        )
        actor = Actor.person(contact.pk, via)
        visitor = visitor_for_token(self.visitor_token)
        if not created or visitor is not None:
            # Rows that other writers lock too (a known person's, a browser's visits)
            # are written under the lock, as by every other writer: the lock now.
            ledger_lock()
        shared_device = (
            visitor is not None
            and visitor.contact_id is not None
            and visitor.contact_id != contact.pk
        )
        # One set-based write of everything the person answered (contacts'
        # person_answers_record): the same rows, payloads and signals as recording
        # them one by one, in a fraction of the statements under the ledger lock.
        person_answers_record(
            contact=contact,
            consents=[
                ConsentInput(
                    purpose=purpose,
                    granted=True,
                    source=f"form:{form.slug}",
                    notice_version=offered[purpose]["version"],
                )
                for purpose in sorted(data.consents)
            ],
            disclosures=[
                DisclosureInput(
                    key=key,
                    value=answer.value,
                    audience=answer.audience,
                    purpose=form.purpose,
                    source=DisclosureSource.FORM,
                )
                for key, answer in data.answers.items()
                if answer.value
            ],
            actor=actor,
            occurred_at=occurred_at,
        )
        touch, _ = touch_record(
            contact=contact,
            channel=channel,
            campaign=campaign,
            kind=TouchKind.FORM,
            occurred_at=when,
            actor=actor,
        )
        new_token: str | None = None
        if visitor is not None and shared_device:
            # The browser's kept visits are the other person's, never this one's.
            if ConsentPurpose.ANALYTICS in data.consents:
                Visit.objects.filter(visitor=visitor).delete()
                visitor.contact = contact
                visitor.save(update_fields=["contact"])
        elif visitor is not None:
            if visitor.contact_id is None:
                visitor.contact = contact
                visitor.save(update_fields=["contact"])
            if _analytics_granted(contact):
                visits_to_touches(visitor=visitor, contact=contact, actor=actor)
            else:  # withdrawn since (by staff, say): the visits go, unread
                Visit.objects.filter(visitor=visitor).delete()
        elif ConsentPurpose.ANALYTICS in data.consents:
            new_token = secrets.token_urlsafe(24)
            Visitor.objects.create(
                token_hash=visitor_token_hash(new_token), contact=contact, created_at=now
            )
        # Deferred for a new person: the flush rechecks that the form was not changed
        # meanwhile (the insert below sees whether it is still published).
        ledger_lock_or_recheck((LedgerAction.FORM_UPDATE,))
        submission = FormSubmission(
            form=form,
            contact=contact,
            touch=touch,
            campaign=campaign,
            shared_device=shared_device,
            created_person=created,
            submitted_at=when,
            page_url=arrival.page_url,
            referrer=arrival.referrer,
            utm=arrival.utm,
            click_ids=arrival.click_ids,
        )
        # Inserted only while the form is published: the page may have read the form
        # a moment before it was unpublished (selectors.form_published remembers
        # forms), and then all of this is undone.
        submission.pk = row_insert_under_parent(
            submission,
            FORM_SUBMISSION_COLUMNS,
            parent=BuyerForm,
            parent_id=form.pk,
            parent_true=("published",),
        )
        if submission.pk is None:
            raise InvalidInput(FORM_NOT_PUBLISHED, "This form is not published.", attr="form")
        submission._state.adding = False
        ledger_append(
            actor=actor,
            action=LedgerAction.FORM_SUBMIT,
            subject_type="form_submission",
            subject_id=submission.pk,
            contact_id=contact.pk,
            after=form_submission_ledger_payload(
                form_slug=form.slug,
                touch_id=touch.pk,
                campaign_id=campaign.pk if campaign is not None else None,
                shared_device=shared_device,
                created_person=created,
                arrival=arrival,
                key=contact_keys([contact.pk])[contact.pk],
                contact_id=contact.pk,
            ),
            occurred_at=occurred_at,
        )
        return Sent(submission=submission, visitor_token=new_token)


def person_of(contact: Contact) -> Contact:
    """The living person a contact now is (a merged one's survivor)."""
    while contact.merged_into_id is not None:
        contact = Contact.objects.get(pk=contact.merged_into_id)
    return contact


def visits_to_touches(*, visitor: Visitor, contact: Contact, actor: Actor) -> int:
    """The visitor's kept visits become the person's visit touches (``web``, or the
    channel of the campaign a visit's ``utm_campaign`` names) (in the caller's
    transaction), dated when they happened; the visits are then deleted."""
    web = Channel.objects.get(key=FORM_CHANNEL_KEY)
    campaigns: dict[str, Campaign | None] = {}
    visits = list(Visit.objects.filter(visitor=visitor).order_by("occurred_at", "id"))
    for visit in visits:
        name = visit.utm.get("utm_campaign", "")
        if name not in campaigns:
            campaigns[name] = (
                Campaign.objects.filter(utm_campaign__iexact=name).order_by("id").first()
                if name
                else None
            )
        campaign = campaigns[name]
        touch_record(
            contact=contact,
            # The campaign's own channel when the visit came from one, else the web.
            channel=campaign.channel if campaign is not None else web,
            campaign=campaign,
            kind=TouchKind.VISIT,
            occurred_at=visit.occurred_at,
            source_system=VISIT_SOURCE_SYSTEM,
            external_id=f"visit-{visit.pk}",
            actor=actor,
        )
    Visit.objects.filter(pk__in=[visit.pk for visit in visits]).delete()
    return len(visits)


def visitor_start(*, contact: Contact, visitor_token: str | None) -> str | None:
    """Analytics consent given in the portal takes effect in this browser at once: its
    visitor id is linked to the person, or a new one made (returned, to set)."""
    visitor = visitor_for_token(visitor_token)
    if visitor is not None:
        if visitor.contact_id != contact.pk:
            Visit.objects.filter(visitor=visitor).delete()
            visitor.contact = contact
            visitor.save(update_fields=["contact"])
        return None
    token = secrets.token_urlsafe(24)
    Visitor.objects.create(
        token_hash=visitor_token_hash(token), contact=contact, created_at=timezone.now()
    )
    return token


# --- merges and erasure (receivers of contacts.signals) ------------------------------


def contact_references_move(*, merged: Contact, kept: Contact) -> dict[str, int]:
    """A merge: the merged person's submissions, visitors and requests go to the kept one."""
    return {
        "form_submissions": FormSubmission.objects.filter(contact=merged).update(contact=kept),
        "visitors": Visitor.objects.filter(contact=merged).update(contact=kept),
        "erasure_requests": ErasureRequest.objects.filter(contact=merged).update(contact=kept),
        "portal_links": PortalLink.objects.filter(contact=merged).update(contact=kept),
    }


def contact_personal_data_erase(contact_ids: list[int]) -> None:
    """An erasure: where the person's forms came from is emptied (the rows stay for the
    counts), their browsers and portal links are forgotten, and their erasure requests
    are answered."""
    FormSubmission.objects.filter(contact_id__in=contact_ids).update(
        page_url="", referrer="", utm={}, click_ids={}
    )
    Visitor.objects.filter(contact_id__in=contact_ids).delete()
    ErasureRequest.objects.filter(contact_id__in=contact_ids).delete()
    PortalLink.objects.filter(contact_id__in=contact_ids).delete()
