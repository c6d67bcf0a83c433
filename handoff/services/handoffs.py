"""Handoffs: opening one (by hand or on a person's say-so), accepting, rejecting, expiring."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from contacts.models import (
    JOURNEY_STAGE_KEY,
    SELF_DECLARED_SOURCES,
    Audience,
    Consent,
    ConsentPurpose,
    Contact,
    Disclosure,
    JourneyStage,
)
from contacts.sealing import contact_keys, seal
from contacts.selectors import audiences_visible_to, disclosures_visible_to
from leadrecord.dates import moment_text
from leadrecord.errors import Conflict, Forbidden, InvalidInput
from leadrecord.ledger import Actor, LedgerDraft, ledger_append, ledger_append_many, ledger_lock
from leadrecord.models import LedgerAction
from leadrecord.roles import Role, user_has_role

from ..models import (
    BUYER_SIGNAL_CONSENT,
    BUYER_SIGNAL_STAGE,
    Handoff,
    HandoffStatus,
    Qualification,
    RejectReason,
    Ruleset,
)
from ..selectors import EVERY_AUDIENCE, handoff_audiences_known_to, ruleset_active


@dataclass(frozen=True)
class SaySo:
    """What gave the buyer's say-so, and who may see it."""

    signal: str
    # "all" for a consent (every role sees consents), else the stage disclosure's.
    audience: str
    disclosure_id: int | None = None


def _stage_say_so(
    contact: Contact, *, audiences: frozenset[str], now: datetime | None = None
) -> SaySo | None:
    """The person's own latest stage among ``audiences``, if it is ``ready_to_talk``."""
    stage = (
        disclosures_visible_to(
            None,
            Disclosure.objects.filter(
                contact=contact, key=JOURNEY_STAGE_KEY, source__in=SELF_DECLARED_SOURCES
            ),
            now=now,
            audiences=audiences,
        )
        .order_by("-disclosed_at", "-id")
        .values_list("id", "value", "audience")
        .first()
    )
    if stage is None or stage[1] != JourneyStage.READY_TO_TALK:
        return None
    return SaySo(BUYER_SIGNAL_STAGE, stage[2], stage[0])


def buyer_signal(
    contact: Contact, *, audiences: frozenset[str], now: datetime | None = None
) -> SaySo | None:
    """What lets a reader of ``audiences`` hand this person to sales, if anything.

    A granted ``sales_contact`` consent (the latest word on that purpose, as
    recorded), or a journey stage of ``ready_to_talk`` that the person
    declared themselves (source ``self`` or ``form``): the latest such stage in
    ``audiences``, neither withdrawn nor expired. Only what the reader may see
    counts, so the answer tells them nothing about what they may not.
    """
    consent = (
        Consent.objects.filter(contact=contact, purpose=ConsentPurpose.SALES_CONTACT)
        .order_by("-occurred_at", "-id")
        .first()
    )
    if consent is not None and consent.granted:
        return SaySo(BUYER_SIGNAL_CONSENT, Audience.ALL.value)
    return _stage_say_so(contact, audiences=audiences, now=now)


def _actor_user(actor: Actor) -> User | None:
    return None if actor.user_id is None else User.objects.filter(pk=actor.user_id).first()


def _actor_audiences(actor: Actor) -> frozenset[str]:
    """The audiences ``actor`` acts for: a user's role's; the system's own work sees all."""
    if actor.user_id is None:
        return EVERY_AUDIENCE
    return audiences_visible_to(_actor_user(actor))


def handoff_as_dict(handoff: Handoff) -> dict[str, Any]:
    return {
        "status": handoff.status,
        "ruleset_version": handoff.ruleset.version,
        "score": handoff.score,
        "due_at": handoff.due_at.isoformat(),
        "buyer_signal": handoff.buyer_signal,
        "say_so_audience": handoff.say_so_audience,
        "say_so_disclosure": handoff.say_so_disclosure_id,
        "assigned_to": handoff.assigned_to_id,
        "automatic": handoff.automatic,
    }


def sales_user_require(user: User | None, attr: str) -> None:
    if user is not None and not user_has_role(user, Role.SALES_REP, Role.MANAGER):
        raise InvalidInput(
            "not_sales",
            f"{user.get_username()} is not a sales rep or manager.",
            attr=attr,
        )


def _handoff_make(
    *,
    contact: Contact,
    ruleset: Ruleset,
    say_so: SaySo,
    actor: Actor,
    note: str,
    assigned_to: User | None,
    occurred_at: datetime | None,
    automatic: bool,
) -> Handoff:
    now = timezone.now()
    moment = occurred_at or now
    handoff = Handoff.objects.create(
        contact=contact,
        ruleset=ruleset,
        score=contact.score,
        note=note,
        buyer_signal=say_so.signal,
        say_so_audience=say_so.audience,
        say_so_disclosure_id=say_so.disclosure_id,
        automatic=automatic,
        created_by_id=actor.user_id,
        occurred_at=moment,
        recorded_at=now,
        due_at=moment + timedelta(hours=ruleset.sla_hours),
        assigned_to=assigned_to,
    )
    ledger_append(
        actor=actor,
        action=LedgerAction.HANDOFF_CREATE,
        subject_type="handoff",
        subject_id=handoff.pk,
        contact_id=contact.pk,
        after=handoff_as_dict(handoff),
        occurred_at=occurred_at,
    )
    return handoff


def _handoff_refusal(contact: Contact, actor: Actor) -> tuple[Conflict | None, Handoff | None]:
    """Why ``actor`` may not hand ``contact`` off now (None if they may), and the pending
    handoff a new one would replace (one the actor may not know of)."""
    if contact.erased_at is not None:
        return Conflict("contact_erased", "This contact has been erased.", attr="contact"), None
    if contact.merged_into_id is not None:
        survivor = Contact.objects.filter(pk=contact.merged_into_id).first()
        name = survivor.display_name if survivor is not None else "another contact"
        return Conflict(
            "contact_merged",
            f"This contact was merged into {name}; hand that one off.",
            attr="contact",
        ), None
    if ruleset_active() is None:
        return Conflict(
            "no_active_ruleset",
            "There is no active ruleset: a manager activates one before handoffs start.",
        ), None
    if buyer_signal(contact, audiences=_actor_audiences(actor)) is None:
        return Conflict(
            "no_buyer_consent",
            "This person has neither granted sales_contact consent nor said they are "
            "ready to talk; they are not handed to sales without their say-so.",
            attr="contact",
        ), None
    open_handoff = Handoff.objects.filter(contact=contact, status=HandoffStatus.PENDING).first()
    if open_handoff is not None and _actor_knows_of(actor, open_handoff):
        return Conflict(
            "handoff_open",
            f"This person was handed off on {moment_text(open_handoff.occurred_at)} and is "
            "still waiting for sales.",
            attr="contact",
        ), None
    return None, open_handoff


@dataclass(frozen=True)
class HandoffReadiness:
    """Whether a person may be handed off now, for a page to offer the action or say why not."""

    refusal: str | None  # why not; None when they may
    # Said yes but not qualified under the active ruleset: allowed (their say-so is what
    # the rule asks), but the page asks the marketer to confirm.
    unqualified: str | None


def handoff_readiness(*, contact: Contact, actor: Actor) -> HandoffReadiness:
    """The rules ``handoff_create`` applies, checked without writing anything."""
    refusal, _ = _handoff_refusal(contact, actor)
    if refusal is not None:
        return HandoffReadiness(refusal.detail, None)
    if contact.qualified:
        return HandoffReadiness(None, None)
    ruleset = ruleset_active()
    threshold = f" (score {contact.score}, threshold {ruleset.mql_threshold})" if ruleset else ""
    return HandoffReadiness(None, f"Not qualified yet{threshold}; sales may send them back.")


def handoff_create(
    *,
    contact: Contact,
    actor: Actor,
    note: str = "",
    assigned_to: User | None = None,
    occurred_at: datetime | None = None,
) -> Handoff:
    """Hand a person to sales, with the buyer's say-so and under the active ruleset."""
    sales_user_require(assigned_to, "assigned_to")
    with transaction.atomic():
        ledger_lock()
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        refusal, open_handoff = _handoff_refusal(contact, actor)
        if refusal is not None:
            raise refusal
        if open_handoff is not None:
            _handoff_supersede(open_handoff)
        ruleset = ruleset_active()
        say_so = buyer_signal(contact, audiences=_actor_audiences(actor))
        if ruleset is None or say_so is None:  # checked by _handoff_refusal, under the lock
            raise Conflict("no_buyer_consent", "This person cannot be handed off now.")
        return _handoff_make(
            contact=contact,
            ruleset=ruleset,
            say_so=say_so,
            actor=actor,
            note=note,
            assigned_to=assigned_to,
            occurred_at=occurred_at,
            automatic=False,
        )


def _actor_knows_of(actor: Actor, handoff: Handoff) -> bool:
    if actor.user_id is None:
        return True
    known = handoff_audiences_known_to(_actor_user(actor))
    return known is None or handoff.say_so_audience in known


def _handoff_supersede(handoff: Handoff) -> None:
    """Close a pending handoff the new one's author may not know of, as a duplicate.

    The person told sales alone (the system opened that one); now marketing (or
    an integration) hands them off with a say-so it may see. Answering "already
    open" would tell it what the person did not tell it, so the new handoff
    replaces the old one in the queue, and sales reads why on the old one.
    """
    handoff.status = HandoffStatus.REJECTED
    handoff.reason = RejectReason.DUPLICATE
    handoff.decision_note = "Replaced by a later handoff, made on a say-so of its own."
    handoff.decided_at = timezone.now()
    handoff.save(update_fields=["status", "reason", "decision_note", "decided_at"])
    ledger_append(
        actor=Actor.system("say-so"),
        action=LedgerAction.HANDOFF_REJECT,
        subject_type="handoff",
        subject_id=handoff.pk,
        contact_id=handoff.contact_id,
        before={"status": HandoffStatus.PENDING},
        after={"status": HandoffStatus.REJECTED, "reason": RejectReason.DUPLICATE},
        reason=handoff.decision_note,
    )


def handoffs_open_on_say_so(disclosure_ids: Iterable[int | None]) -> list[Handoff]:
    """The system hands off a person who told sales alone that they are ready to talk.

    Called inside the recording transaction (ledger lock held) with the ids of
    journey stages just recorded, by any path. A stage the person declared
    themselves (source ``self`` or ``form``), ``ready_to_talk``, in audience
    ``sales`` only, and still their latest own stage that sales sees, opens a
    handoff under the active ruleset as the system, unless one is pending: no
    marketer may see that stage, so none could act on it. The handoff's say-so
    is that stage (audience ``sales``), so marketers and integrations never
    know of it (``handoff.selectors.handoffs_visible_to``). A stage that
    marketing may see is marketing's to act on, as before.
    """
    ids = [pk for pk in disclosure_ids if pk is not None]
    if not ids:
        return []
    ruleset = ruleset_active()
    if ruleset is None:
        return []
    sales_sees = frozenset({Audience.SALES.value, Audience.ALL.value})
    stages = disclosures_visible_to(
        None,
        Disclosure.objects.filter(
            pk__in=ids,
            key=JOURNEY_STAGE_KEY,
            value=JourneyStage.READY_TO_TALK,
            audience=Audience.SALES,
            source__in=SELF_DECLARED_SOURCES,
            contact__merged_into__isnull=True,
        ),
        audiences=sales_sees,
    ).select_related("contact")
    pending = set(
        Handoff.objects.filter(
            contact_id__in=[stage.contact_id for stage in stages], status=HandoffStatus.PENDING
        ).values_list("contact_id", flat=True)
    )
    actor = Actor.system("say-so")
    created = []
    for stage in stages:
        if stage.contact_id in pending:
            continue
        say_so = _stage_say_so(stage.contact, audiences=sales_sees)
        if say_so is None or say_so.disclosure_id != stage.pk:
            continue  # a later stage of theirs says otherwise
        created.append(
            _handoff_make(
                contact=stage.contact,
                ruleset=ruleset,
                say_so=say_so,
                actor=actor,
                note="Told sales they are ready to talk; handed off automatically.",
                assigned_to=None,
                occurred_at=None,
                automatic=True,
            )
        )
        pending.add(stage.contact_id)
    return created


def handoffs_create_automatic(contact_ids: Iterable[int], *, ruleset: Ruleset) -> list[Handoff]:
    """Hand off qualified people who said yes, once per qualification.

    Runs inside the caller's locked transaction. A person already handed off
    since they last qualified is left alone, so a rejected handoff is not
    sent straight back by the next touch; one who qualified before saying yes
    is handed off when they say it.
    """
    actor = Actor.system("auto-handoff")
    ids = list(contact_ids)
    qualified_at = dict(
        Qualification.objects.filter(contact_id__in=ids, qualified=True)
        .values("contact_id")
        .annotate(latest=Max("occurred_at"))
        .values_list("contact_id", "latest")
    )
    last_handoff = dict(
        Handoff.objects.filter(contact_id__in=ids)
        .values("contact_id")
        .annotate(latest=Max("recorded_at"))
        .values_list("contact_id", "latest")
    )
    created = []
    for contact in Contact.objects.filter(
        pk__in=ids, qualified=True, erased_at__isnull=True, merged_into__isnull=True
    ):
        since = qualified_at.get(contact.pk)
        handed = last_handoff.get(contact.pk)
        if since is None or (handed is not None and handed >= since):
            continue
        say_so = buyer_signal(contact, audiences=EVERY_AUDIENCE)
        if say_so is None:
            continue
        created.append(
            _handoff_make(
                contact=contact,
                ruleset=ruleset,
                say_so=say_so,
                actor=actor,
                note="Qualified under the active ruleset; handed off automatically.",
                assigned_to=None,
                occurred_at=None,
                automatic=True,
            )
        )
    return created


def _decide_check(handoff: Handoff, user: User, moment: datetime) -> None:
    if handoff.status != HandoffStatus.PENDING:
        raise Conflict(
            "handoff_not_pending", f"This handoff is already {handoff.status}; nothing changed."
        )
    # Past the SLA but not yet expired by the periodic job, the handoff is still sales'
    # to decide: refusing would leave it stuck in the queue until the job runs. The
    # decision records that it came late (``_lateness``).
    is_manager = user_has_role(user, Role.MANAGER)
    if not is_manager and handoff.assigned_to_id not in (None, user.pk):
        raise Forbidden("not_your_handoff", "This handoff is assigned to another rep.")
    if handoff.contact.erased_at is not None:
        raise Conflict("contact_erased", "This contact has been erased.")


def _lateness(handoff: Handoff, moment: datetime) -> dict[str, Any]:
    """For the ledger: whether a decision came after the SLA, and by how many seconds."""
    late_by = moment - handoff.due_at
    if late_by <= timedelta(0):
        return {}
    return {"late": True, "late_by_seconds": int(late_by.total_seconds())}


def _locked_handoff(handoff: Handoff) -> Handoff:
    return (
        Handoff.objects.select_for_update().select_related("contact", "ruleset").get(pk=handoff.pk)
    )


def handoff_accept(
    *,
    handoff: Handoff,
    user: User,
    owner: User | None = None,
    occurred_at: datetime | None = None,
) -> Handoff:
    """Sales takes the person: ``owner`` (default the accepting user) owns them from now on."""
    owner = owner or user
    sales_user_require(owner, "owner")
    if owner.pk != user.pk and not user_has_role(user, Role.MANAGER):
        raise Forbidden("not_allowed", "A rep accepts handoffs for themselves only.", attr="owner")
    actor = Actor.of(user)
    with transaction.atomic():
        ledger_lock()
        handoff = _locked_handoff(handoff)
        moment = occurred_at or timezone.now()
        _decide_check(handoff, user, moment)
        handoff.status = HandoffStatus.ACCEPTED
        handoff.owner = owner
        handoff.decided_by = user
        handoff.decided_at = moment
        handoff.save(update_fields=["status", "owner", "decided_by", "decided_at"])
        ledger_append(
            actor=actor,
            action=LedgerAction.HANDOFF_ACCEPT,
            subject_type="handoff",
            subject_id=handoff.pk,
            contact_id=handoff.contact_id,
            before={"status": HandoffStatus.PENDING},
            after={
                "status": HandoffStatus.ACCEPTED,
                "owner": owner.get_username(),
                **_lateness(handoff, moment),
            },
            occurred_at=occurred_at,
        )
    return handoff


def handoff_reject(
    *,
    handoff: Handoff,
    user: User,
    reason: str,
    note: str = "",
    occurred_at: datetime | None = None,
) -> Handoff:
    """Sales sends the person back to marketing, with a reason from the fixed list."""
    if reason not in RejectReason.values:
        raise InvalidInput(
            "invalid_choice",
            f"Reason must be one of {', '.join(RejectReason.values)}.",
            attr="reason",
        )
    if reason == RejectReason.OTHER and not note.strip():
        raise InvalidInput(
            "required", "Say why in the note when the reason is 'other'.", attr="note"
        )
    actor = Actor.of(user)
    with transaction.atomic():
        ledger_lock()
        handoff = _locked_handoff(handoff)
        moment = occurred_at or timezone.now()
        _decide_check(handoff, user, moment)
        handoff.status = HandoffStatus.REJECTED
        handoff.reason = reason
        handoff.decision_note = note
        handoff.decided_by = user
        handoff.decided_at = moment
        handoff.save(
            update_fields=["status", "reason", "decision_note", "decided_by", "decided_at"]
        )
        ledger_append(
            actor=actor,
            action=LedgerAction.HANDOFF_REJECT,
            subject_type="handoff",
            subject_id=handoff.pk,
            contact_id=handoff.contact_id,
            before={"status": HandoffStatus.PENDING},
            after={
                "status": HandoffStatus.REJECTED,
                "reason": reason,
                **_lateness(handoff, moment),
                # The note may say things about the person: sealed with their
                # key, so erasure makes it unreadable in the ledger too.
                **_sealed_note(handoff.contact_id, note),
            },
            occurred_at=occurred_at,
        )
    return handoff


def _sealed_note(contact_id: int, note: str) -> dict[str, str]:
    if not note:
        return {}
    key = contact_keys([contact_id]).get(contact_id)
    if key is None:
        return {}
    return seal(key=key, contact_id=contact_id, values={"note": note})


EXPIRE_CHUNK = 500


def handoffs_expire_due(*, now: datetime | None = None) -> int:
    """Expire pending handoffs past their SLA; they go back to marketing. Safe to repeat."""
    now = now or timezone.now()
    actor = Actor.system("sla")
    expired = 0
    while True:
        with transaction.atomic():
            ledger_lock()
            due = list(
                Handoff.objects.select_for_update()
                .select_related("ruleset")
                .filter(status=HandoffStatus.PENDING, due_at__lte=now)
                .order_by("due_at", "pk")[:EXPIRE_CHUNK]
            )
            if not due:
                return expired
            for handoff in due:
                handoff.status = HandoffStatus.EXPIRED
                handoff.decided_at = handoff.due_at
            Handoff.objects.bulk_update(due, ["status", "decided_at"])
            ledger_append_many(
                [
                    LedgerDraft(
                        actor=actor,
                        action=LedgerAction.HANDOFF_EXPIRE,
                        subject_type="handoff",
                        subject_id=handoff.pk,
                        contact_id=handoff.contact_id,
                        before={"status": HandoffStatus.PENDING},
                        after={"status": HandoffStatus.EXPIRED},
                        reason=f"No answer within the {handoff.ruleset.sla_hours}-hour SLA.",
                        occurred_at=handoff.due_at,
                    )
                    for handoff in due
                ]
            )
        expired += len(due)
