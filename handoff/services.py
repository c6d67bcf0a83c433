"""Writes for rulesets, handoffs, deals, sale events and targets.

Each function runs in one transaction, takes the ledger lock before it reads
what it is about to change (so concurrent callers queue rather than race: two
reps accepting the same handoff at once find it pending one after the other),
and appends its ledger entries in the same transaction. A refusal raises
a domain error (``leadrecord.errors``) before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
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
    Organization,
    Team,
    Touch,
    TouchKind,
)
from contacts.sealing import contact_keys, seal
from contacts.selectors import audiences_visible_to, channels_all, disclosures_visible_to
from leadrecord.dispatch import task_send_on_commit
from leadrecord.errors import Conflict, Forbidden, InvalidInput
from leadrecord.ledger import Actor, LedgerDraft, ledger_append, ledger_append_many, ledger_lock
from leadrecord.roles import Role, user_has_role

from .models import (
    BUYER_SIGNAL_CONSENT,
    BUYER_SIGNAL_STAGE,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_SOURCING_WINDOW_DAYS,
    BuyingRole,
    ContributionTarget,
    Deal,
    DealContact,
    DealSource,
    DealState,
    Handoff,
    HandoffStatus,
    Qualification,
    RejectReason,
    Ruleset,
    RulesetStatus,
    SaleEvent,
    SaleKind,
)
from .scoring import contacts_rescore, ruleset_active
from .selectors import EVERY_AUDIENCE, handoff_audiences_known_to

# --- rulesets ---------------------------------------------------------------

MAX_POINT_RULES = 200
POINTS_LIMIT = 1000
_POINT_KEY = re.compile(r"^(channel|kind|disclosure):([a-z0-9][a-z0-9_-]{0,63})$")
RULESET_FIELDS = (
    "name",
    "points",
    "mql_threshold",
    "sla_hours",
    "sourcing_window_days",
    "lookback_days",
    "auto_handoff",
)


def points_validate(points: Any) -> dict[str, int]:
    """The points table, checked: known channels and kinds, whole numbers in range."""
    if not isinstance(points, dict):
        raise InvalidInput("invalid", "Points must be an object of rule: points.", attr="points")
    if len(points) > MAX_POINT_RULES:
        raise InvalidInput(
            "too_many",
            f"At most {MAX_POINT_RULES} point rules.",
            attr="points",
        )
    channels = set(channels_all().values_list("key", flat=True))
    checked: dict[str, int] = {}
    for key, value in points.items():
        match = _POINT_KEY.match(str(key))
        if match is None:
            raise InvalidInput(
                "invalid",
                f"{str(key)[:80]!r} is not a rule: use channel:<key>, kind:<kind> or "
                "disclosure:<key>.",
                attr="points",
            )
        prefix, name = match.groups()
        if prefix == "channel" and name not in channels:
            raise InvalidInput("unknown_channel", f"No channel {name!r}.", attr="points")
        if prefix == "kind" and name not in TouchKind.values:
            raise InvalidInput("unknown_kind", f"No touch kind {name!r}.", attr="points")
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(
                "invalid", f"Points for {key} must be a whole number.", attr="points"
            )
        if not -POINTS_LIMIT <= value <= POINTS_LIMIT:
            raise InvalidInput(
                "out_of_range",
                f"Points for {key} must be between -{POINTS_LIMIT} and {POINTS_LIMIT}.",
                attr="points",
            )
        checked[key] = value
    return dict(sorted(checked.items()))


def ruleset_as_dict(ruleset: Ruleset) -> dict[str, Any]:
    return {
        "name": ruleset.name,
        "version": ruleset.version,
        "status": ruleset.status,
        "points": ruleset.points,
        "mql_threshold": ruleset.mql_threshold,
        "sla_hours": ruleset.sla_hours,
        "sourcing_window_days": ruleset.sourcing_window_days,
        "lookback_days": ruleset.lookback_days,
        "auto_handoff": ruleset.auto_handoff,
    }


def ruleset_create(
    *,
    name: str,
    points: dict[str, Any],
    mql_threshold: int,
    sla_hours: int,
    sourcing_window_days: int = DEFAULT_SOURCING_WINDOW_DAYS,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    auto_handoff: bool = False,
    actor: Actor,
) -> Ruleset:
    """A new draft, numbered after every ruleset there has been."""
    checked = points_validate(points)
    with transaction.atomic():
        ledger_lock()  # also serializes the choice of the next version
        now = timezone.now()
        version = (Ruleset.objects.aggregate(top=Max("version"))["top"] or 0) + 1
        ruleset = Ruleset.objects.create(
            name=name,
            version=version,
            points=checked,
            mql_threshold=mql_threshold,
            sla_hours=sla_hours,
            sourcing_window_days=sourcing_window_days,
            lookback_days=lookback_days,
            auto_handoff=auto_handoff,
            created_by_id=actor.user_id,
            created_at=now,
            updated_at=now,
        )
        ledger_append(
            actor=actor,
            action="ruleset.create",
            subject_type="ruleset",
            subject_id=ruleset.pk,
            after=ruleset_as_dict(ruleset),
        )
    return ruleset


def _frozen(ruleset: Ruleset) -> Conflict:
    return Conflict(
        "ruleset_frozen",
        f"Ruleset v{ruleset.version} is {ruleset.status}; only drafts change. "
        "Copy it into a new draft instead.",
    )


def ruleset_update(*, ruleset: Ruleset, changes: dict[str, Any], actor: Actor) -> Ruleset:
    """Change a draft. An active or retired ruleset is written in stone (409)."""
    unknown = set(changes) - set(RULESET_FIELDS)
    if unknown:
        raise InvalidInput("invalid", f"Unknown fields: {', '.join(sorted(unknown))}.")
    if "points" in changes:
        changes = {**changes, "points": points_validate(changes["points"])}
    with transaction.atomic():
        ledger_lock()
        ruleset = Ruleset.objects.select_for_update().get(pk=ruleset.pk)
        if not ruleset.is_editable:
            raise _frozen(ruleset)
        before = ruleset_as_dict(ruleset)
        for field, value in changes.items():
            setattr(ruleset, field, value)
        ruleset.updated_at = timezone.now()
        ruleset.save()
        after = ruleset_as_dict(ruleset)
        if after != before:
            ledger_append(
                actor=actor,
                action="ruleset.update",
                subject_type="ruleset",
                subject_id=ruleset.pk,
                before={key: value for key, value in before.items() if after[key] != value},
                after={key: value for key, value in after.items() if before[key] != value},
            )
    return ruleset


def ruleset_activate(*, ruleset: Ruleset, actor: Actor) -> Ruleset:
    """Freeze a draft and make it the rules; the active one retires.

    Every living contact is then rescored under it by a Celery task, queued
    once this transaction commits.
    """
    with transaction.atomic():
        ledger_lock()
        ruleset = Ruleset.objects.select_for_update().get(pk=ruleset.pk)
        if not ruleset.is_editable:
            raise _frozen(ruleset)
        now = timezone.now()
        previous = Ruleset.objects.select_for_update().filter(status=RulesetStatus.ACTIVE).first()
        drafts: list[LedgerDraft] = []
        if previous is not None:
            previous.status = RulesetStatus.RETIRED
            previous.retired_at = now
            previous.save(update_fields=["status", "retired_at"])
            drafts.append(
                LedgerDraft(
                    actor=actor,
                    action="ruleset.retire",
                    subject_type="ruleset",
                    subject_id=previous.pk,
                    before={"status": RulesetStatus.ACTIVE},
                    after={"status": RulesetStatus.RETIRED, "replaced_by": ruleset.version},
                )
            )
        ruleset.status = RulesetStatus.ACTIVE
        ruleset.activated_at = now
        ruleset.save(update_fields=["status", "activated_at"])
        drafts.append(
            LedgerDraft(
                actor=actor,
                action="ruleset.activate",
                subject_type="ruleset",
                subject_id=ruleset.pk,
                before={"status": RulesetStatus.DRAFT},
                after={
                    "status": RulesetStatus.ACTIVE,
                    "version": ruleset.version,
                    "replaces": previous.version if previous else None,
                },
            )
        )
        ledger_append_many(drafts)

        from .tasks import contacts_rescore_all_task

        ruleset_id = ruleset.pk
        # Scores must follow the new rules: if the broker is down, rescore in process.
        task_send_on_commit(contacts_rescore_all_task, ruleset_id, inline_if_unreachable=True)
    return ruleset


RESCORE_CHUNK = 2000


def contacts_rescore_all(*, ruleset_id: int, chunk_size: int = RESCORE_CHUNK) -> int:
    """Rescore every living contact under ``ruleset_id`` while it is still the active one.

    One transaction per chunk keeps the ledger lock short for other writers.
    Returns how many contacts were looked at. Running it twice changes nothing
    the second time.
    """
    actor = Actor.system("rescore")
    last_id = 0
    seen = 0
    while True:
        with transaction.atomic():
            ledger_lock()
            ruleset = Ruleset.objects.filter(pk=ruleset_id, status=RulesetStatus.ACTIVE).first()
            if ruleset is None:
                return seen  # a newer ruleset took over; its own task rescores
            ids = list(
                Contact.objects.filter(
                    pk__gt=last_id, erased_at__isnull=True, merged_into__isnull=True
                )
                .order_by("pk")
                .values_list("pk", flat=True)[:chunk_size]
            )
            if not ids:
                return seen
            contacts_rescore(ids, actor=actor, ruleset=ruleset)
        seen += len(ids)
        last_id = ids[-1]


# --- handoffs ---------------------------------------------------------------


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


def _require_sales_user(user: User | None, attr: str) -> None:
    if user is not None and not user_has_role(user, Role.SALES_REP, Role.MANAGER):
        raise InvalidInput(
            "not_sales",
            f"{user.get_username()} is not a sales rep or manager.",
            attr=attr,
        )


def _require_handoff_ready(contact: Contact) -> None:
    if contact.erased_at is not None:
        raise Conflict("contact_erased", "This contact has been erased.", attr="contact")
    if contact.merged_into_id is not None:
        raise Conflict(
            "contact_merged",
            f"This contact was merged into contact {contact.merged_into_id}; hand that one off.",
            attr="contact",
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
        action="handoff.create",
        subject_type="handoff",
        subject_id=handoff.pk,
        contact_id=contact.pk,
        after=handoff_as_dict(handoff),
        occurred_at=occurred_at,
    )
    return handoff


def handoff_create(
    *,
    contact: Contact,
    actor: Actor,
    note: str = "",
    assigned_to: User | None = None,
    occurred_at: datetime | None = None,
) -> Handoff:
    """Hand a person to sales, with the buyer's say-so and under the active ruleset."""
    _require_sales_user(assigned_to, "assigned_to")
    with transaction.atomic():
        ledger_lock()
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        _require_handoff_ready(contact)
        ruleset = ruleset_active()
        if ruleset is None:
            raise Conflict(
                "no_active_ruleset",
                "There is no active ruleset: a manager activates one before handoffs start.",
            )
        say_so = buyer_signal(contact, audiences=_actor_audiences(actor))
        if say_so is None:
            raise Conflict(
                "no_buyer_consent",
                "This person has neither granted sales_contact consent nor said they are "
                "ready to talk; they are not handed to sales without their say-so.",
                attr="contact",
            )
        open_handoff = Handoff.objects.filter(contact=contact, status=HandoffStatus.PENDING).first()
        if open_handoff is not None:
            if _actor_knows_of(actor, open_handoff):
                raise Conflict(
                    "handoff_open",
                    f"Handoff #{open_handoff.pk} for this person is still pending.",
                    attr="contact",
                )
            _handoff_supersede(open_handoff)
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
        action="handoff.reject",
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
    if moment >= handoff.due_at:
        raise Conflict(
            "handoff_expired",
            f"This handoff's SLA ran out at {handoff.due_at.isoformat()}; it returns to marketing.",
        )
    is_manager = user_has_role(user, Role.MANAGER)
    if not is_manager and handoff.assigned_to_id not in (None, user.pk):
        raise Forbidden("not_your_handoff", "This handoff is assigned to another rep.")
    if handoff.contact.erased_at is not None:
        raise Conflict("contact_erased", "This contact has been erased.")


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
    _require_sales_user(owner, "owner")
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
            action="handoff.accept",
            subject_type="handoff",
            subject_id=handoff.pk,
            contact_id=handoff.contact_id,
            before={"status": HandoffStatus.PENDING},
            after={"status": HandoffStatus.ACCEPTED, "owner": owner.get_username()},
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
            action="handoff.reject",
            subject_type="handoff",
            subject_id=handoff.pk,
            contact_id=handoff.contact_id,
            before={"status": HandoffStatus.PENDING},
            after={
                "status": HandoffStatus.REJECTED,
                "reason": reason,
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
                        action="handoff.expire",
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


# --- deals and sourcing ------------------------------------------------------


@dataclass(frozen=True)
class Member:
    contact: Contact
    role: str


@dataclass(frozen=True)
class Sourcing:
    source: str
    reason: str
    handoff: Handoff | None


def _day_count(delta: timedelta) -> str:
    days = delta.days
    return "the same day" if days == 0 else f"{days} day{'s' if days != 1 else ''}"


# The say-so audiences of handoffs marketing knows of: only those are its work.
# A handoff opened on a stage the person told sales alone is sales' own (and a
# deal's reason naming it would tell marketing of it).
_MARKETING_KNOWS = (Audience.ALL.value, Audience.MARKETING.value)


def sourcing_derive(contact_ids: Sequence[int], deal_time: datetime) -> Sourcing:
    """Marketing-sourced when an accepted handoff of a buying-group member, made on a say-so
    marketing may see, preceded the deal within the sourcing window; otherwise
    sales-sourced. The reason says which evidence."""
    ruleset = ruleset_active()
    window_days = ruleset.sourcing_window_days if ruleset else DEFAULT_SOURCING_WINDOW_DAYS
    rules = f"sourcing window {window_days} days" + (
        f", ruleset v{ruleset.version}" if ruleset else ", no active ruleset"
    )
    accepted = Handoff.objects.filter(
        contact_id__in=list(contact_ids),
        say_so_audience__in=_MARKETING_KNOWS,
        status=HandoffStatus.ACCEPTED,
        occurred_at__lte=deal_time,
        decided_at__lte=deal_time,
    ).select_related("decided_by")
    in_window = (
        accepted.filter(occurred_at__gte=deal_time - timedelta(days=window_days))
        .order_by("-occurred_at", "-pk")
        .first()
    )
    if in_window is not None:
        decided_by = in_window.decided_by.get_username() if in_window.decided_by else "sales"
        return Sourcing(
            DealSource.MARKETING,
            f"Marketing-sourced: handoff #{in_window.pk} of contact #{in_window.contact_id} "
            f"was made {_day_count(deal_time - in_window.occurred_at)} before this deal and "
            f"accepted by {decided_by} ({rules}).",
            in_window,
        )
    older = accepted.order_by("-occurred_at", "-pk").first()
    members = len(set(contact_ids))
    group = f"{members} buying-group member{'s' if members != 1 else ''}"
    if older is not None:
        return Sourcing(
            DealSource.SALES,
            f"Sales-sourced: the latest accepted handoff for the {group}, #{older.pk}, was "
            f"{_day_count(deal_time - older.occurred_at)} before this deal, outside the "
            f"window ({rules}).",
            None,
        )
    return Sourcing(
        DealSource.SALES,
        f"Sales-sourced: no accepted handoff for the {group} before this deal ({rules}).",
        None,
    )


def _members_check(members: Sequence[Member]) -> None:
    seen: set[int] = set()
    for member in members:
        if member.role not in BuyingRole.values:
            raise InvalidInput(
                "invalid_choice",
                f"Role must be one of {', '.join(BuyingRole.values)}.",
                attr="contacts",
            )
        if member.contact.pk in seen:
            raise InvalidInput(
                "duplicate",
                f"Contact {member.contact.pk} is named twice in the buying group.",
                attr="contacts",
            )
        seen.add(member.contact.pk)
        if not member.contact.is_living:
            state = "erased" if member.contact.erased_at else "merged into another"
            raise InvalidInput(
                "contact_not_living",
                f"Contact {member.contact.pk} has been {state}.",
                attr="contacts",
            )


def deal_as_dict(deal: Deal) -> dict[str, Any]:
    return {
        "name": deal.name,
        "organization": deal.organization_id,
        "amount": str(deal.amount),
        "owner": deal.owner.get_username() if deal.owner else None,
        "state": deal.state,
        "source": deal.source,
        "source_reason": deal.source_reason,
        "sourcing_handoff": deal.sourcing_handoff_id,
        "external_id": deal.external_id,
    }


def deal_create(
    *,
    name: str,
    organization: Organization,
    members: Sequence[Member],
    amount: Decimal,
    actor: Actor,
    owner: User | None = None,
    external_id: str | None = None,
    source_system: str = "",
    occurred_at: datetime | None = None,
) -> tuple[Deal, bool]:
    """Open a deal with its buying group; its source is derived from the record.

    A repeated ``external_id`` answers the first deal (and whether this call created it).
    """
    if amount < 0:
        raise InvalidInput("min_value", "The amount cannot be negative.", attr="amount")
    _members_check(members)
    _require_sales_user(owner, "owner")
    with transaction.atomic():
        ledger_lock()
        if external_id:
            existing = Deal.objects.filter(external_id=external_id).first()
            if existing is not None:
                return existing, False
        locked = {
            contact.pk: contact
            for contact in Contact.objects.select_for_update().filter(
                pk__in=[member.contact.pk for member in members]
            )
        }
        _members_check([Member(locked[m.contact.pk], m.role) for m in members])
        now = timezone.now()
        moment = occurred_at or now
        sourcing = sourcing_derive(list(locked), moment)
        deal = Deal.objects.create(
            name=name,
            organization=organization,
            amount=amount,
            owner=owner,
            derived_source=sourcing.source,
            derived_source_reason=sourcing.reason,
            sourcing_handoff=sourcing.handoff,
            source_system=source_system,
            external_id=external_id or None,
            created_by_id=actor.user_id,
            occurred_at=moment,
            recorded_at=now,
        )
        DealContact.objects.bulk_create(
            [
                DealContact(
                    deal=deal,
                    contact_id=member.contact.pk,
                    role=member.role,
                    other_organization=locked[member.contact.pk].organization_id != organization.pk,
                )
                for member in members
            ]
        )
        after = deal_as_dict(deal)
        after["contacts"] = [{"contact": m.contact.pk, "role": m.role} for m in members]
        drafts = [
            LedgerDraft(
                actor=actor,
                action="deal.create",
                subject_type="deal",
                subject_id=deal.pk,
                after=after,
                occurred_at=occurred_at,
            )
        ]
        drafts += [
            LedgerDraft(
                actor=actor,
                action="deal.member_add",
                subject_type="deal",
                subject_id=deal.pk,
                contact_id=member.contact.pk,
                after={"deal": deal.pk, "name": deal.name, "role": member.role},
                occurred_at=occurred_at,
            )
            for member in members
        ]
        ledger_append_many(drafts)
    return deal, True


def deal_influenced(deal: Deal) -> bool:
    """Whether any marketing-team touch of a buying-group member came before a sale event."""
    last_sale = deal.sale_events.aggregate(last=Max("occurred_at"))["last"]
    if last_sale is None:
        return False
    member_ids = list(deal.members.values_list("contact_id", flat=True))
    return Touch.objects.filter(
        contact_id__in=member_ids,
        channel__team=Team.MARKETING,
        occurred_at__lt=last_sale,
    ).exists()


# Which sale events a deal in each state takes, and the state after them.
_TRANSITIONS: dict[tuple[str, str], str] = {
    (DealState.OPEN, SaleKind.WON): DealState.WON,
    (DealState.OPEN, SaleKind.LOST): DealState.LOST,
    (DealState.WON, SaleKind.EXPANSION): DealState.WON,
    (DealState.WON, SaleKind.RENEWAL): DealState.WON,
    (DealState.WON, SaleKind.CHURN): DealState.CHURNED,
}


def _transition_refused(deal: Deal, kind: str) -> Conflict:
    if kind == SaleKind.WON and deal.state in (DealState.WON, DealState.CHURNED):
        return Conflict("already_won", "This deal has already been won.", attr="kind")
    if deal.state == DealState.LOST:
        return Conflict("deal_lost", "This deal was lost; nothing follows.", attr="kind")
    if deal.state == DealState.CHURNED:
        return Conflict("deal_churned", "This customer churned.", attr="kind")
    if deal.state == DealState.WON and kind == SaleKind.LOST:
        return Conflict(
            "already_won", "A won deal cannot be lost; record churn instead.", attr="kind"
        )
    return Conflict("not_won", f"A {kind} follows a won deal; this one is still open.", attr="kind")


def sale_event_record(
    *,
    deal: Deal,
    kind: str,
    amount: Decimal | None,
    actor: Actor,
    occurred_at: datetime | None = None,
    external_id: str | None = None,
    source_system: str = "",
) -> tuple[SaleEvent, bool]:
    """Record a sale event; the deal's state follows. A repeated external id answers the first."""
    if kind not in SaleKind.values:
        raise InvalidInput(
            "invalid_choice",
            f"Kind must be one of {', '.join(SaleKind.values)}.",
            attr="kind",
        )
    if amount is None:
        if kind != SaleKind.LOST:
            raise InvalidInput("required", f"A {kind} needs an amount.", attr="amount")
        amount = Decimal("0")
    if amount < 0:
        raise InvalidInput("min_value", "The amount cannot be negative.", attr="amount")
    with transaction.atomic():
        ledger_lock()
        if external_id:
            existing = SaleEvent.objects.filter(
                source_system=source_system, external_id=external_id
            ).first()
            if existing is not None:
                return existing, False
        deal = Deal.objects.select_for_update().get(pk=deal.pk)
        now = timezone.now()
        moment = occurred_at or now
        if moment < deal.occurred_at:
            raise InvalidInput(
                "before_deal",
                f"This deal was created at {deal.occurred_at.isoformat()}; a sale event cannot "
                "come before it.",
                attr="occurred_at",
            )
        new_state = _TRANSITIONS.get((deal.state, kind))
        if new_state is None:
            raise _transition_refused(deal, kind)
        if kind in (SaleKind.EXPANSION, SaleKind.RENEWAL, SaleKind.CHURN):
            won_at = deal.sale_events.filter(kind=SaleKind.WON).values_list(
                "occurred_at", flat=True
            )[0]
            if moment < won_at:
                raise InvalidInput(
                    "before_won",
                    f"The deal was won at {won_at.isoformat()}; a {kind} cannot come before.",
                    attr="occurred_at",
                )
        event = SaleEvent.objects.create(
            deal=deal,
            kind=kind,
            amount=amount,
            occurred_at=moment,
            recorded_at=now,
            source_system=source_system,
            external_id=external_id or None,
            recorded_by_id=actor.user_id,
        )
        before_state = deal.state
        deal.state = new_state
        deal.influenced = deal_influenced(deal)
        deal.save(update_fields=["state", "influenced"])
        ledger_append(
            actor=actor,
            action="sale.record",
            subject_type="deal",
            subject_id=deal.pk,
            before={"state": before_state},
            after={
                "sale_event": event.pk,
                "kind": kind,
                "amount": str(amount),
                "state": new_state,
                "external_id": event.external_id,
            },
            occurred_at=occurred_at,
        )
    return event, True


def deal_source_override(*, deal: Deal, source: str, reason: str, actor: Actor) -> Deal:
    """Set a deal's source by hand. Needs a reason; the derived source stays beside it."""
    if source not in DealSource.values:
        raise InvalidInput(
            "invalid_choice",
            f"Source must be one of {', '.join(DealSource.values)}.",
            attr="source",
        )
    if not reason.strip():
        raise InvalidInput("required", "An override needs a reason.", attr="reason")
    with transaction.atomic():
        ledger_lock()
        deal = Deal.objects.select_for_update().get(pk=deal.pk)
        before = {"source": deal.source, "override": deal.source_override or None}
        deal.source_override = source
        deal.override_reason = reason.strip()
        deal.save(update_fields=["source_override", "override_reason"])
        ledger_append(
            actor=actor,
            action="deal.override_source",
            subject_type="deal",
            subject_id=deal.pk,
            before=before,
            after={"source": source, "derived_source": deal.derived_source},
            reason=deal.override_reason,
        )
    return deal


# --- targets -----------------------------------------------------------------

_PERIOD = re.compile(r"^(\d{4})-Q([1-4])$")


def target_set(*, period: str, share: Decimal, actor: Actor) -> tuple[ContributionTarget, bool]:
    """Set marketing's agreed share of pipeline for a quarter (a new value replaces the old)."""
    if not _PERIOD.match(period):
        raise InvalidInput("invalid", "A period is a quarter like 2026-Q3.", attr="period")
    if not Decimal("0") <= share <= Decimal("1"):
        raise InvalidInput(
            "out_of_range",
            "The share is between 0 and 1.",
            attr="marketing_pipeline_share",
        )
    with transaction.atomic():
        ledger_lock()
        target = ContributionTarget.objects.select_for_update().filter(period=period).first()
        before = (
            {"marketing_pipeline_share": str(target.marketing_pipeline_share)} if target else None
        )
        created = target is None
        if target is None:
            target = ContributionTarget(period=period)
        target.marketing_pipeline_share = share
        target.set_by_id = actor.user_id
        target.updated_at = timezone.now()
        target.save()
        ledger_append(
            actor=actor,
            action="target.set",
            subject_type="target",
            subject_id=period,
            before=before,
            after={"marketing_pipeline_share": str(share)},
        )
    return target, created


# --- hooks for the contacts app: merges and erasure ---------------------------


def contact_references_move(*, merged: Contact, kept: Contact, actor: Actor) -> dict[str, int]:
    """A merge moves the merged person's handoffs, deal memberships and qualifications.

    Called inside the merge's transaction (ledger lock held). When both have a
    pending handoff, the merged person's closes as a duplicate; but when only
    the merged person's is one marketing may know of, the kept person's closes
    instead, so that the merge does not tell marketing of a handoff it may not
    know of.
    """
    moved: dict[str, int] = {}
    kept_pending = list(
        Handoff.objects.select_for_update().filter(contact=kept, status=HandoffStatus.PENDING)
    )
    merged_pending = list(
        Handoff.objects.select_for_update().filter(contact=merged, status=HandoffStatus.PENDING)
    )
    if kept_pending and merged_pending:
        hidden_kept = all(h.say_so_audience not in _MARKETING_KNOWS for h in kept_pending)
        if hidden_kept and any(h.say_so_audience in _MARKETING_KNOWS for h in merged_pending):
            duplicate, note = kept_pending, f"Merged with contact {merged.pk}, whose handoff stays."
            about = kept.pk
        else:
            duplicate = merged_pending
            note = f"Merged into contact {kept.pk}, which has its own handoff."
            about = merged.pk
        for handoff in duplicate:
            handoff.status = HandoffStatus.REJECTED
            handoff.reason = RejectReason.DUPLICATE
            handoff.decision_note = note
            handoff.decided_at = timezone.now()
            handoff.save(update_fields=["status", "reason", "decision_note", "decided_at"])
        ledger_append_many(
            [
                LedgerDraft(
                    actor=actor,
                    action="handoff.reject",
                    subject_type="handoff",
                    subject_id=handoff.pk,
                    contact_id=about,
                    before={"status": HandoffStatus.PENDING},
                    after={"status": HandoffStatus.REJECTED, "reason": RejectReason.DUPLICATE},
                    reason=handoff.decision_note,
                )
                for handoff in duplicate
            ]
        )
    moved["handoffs"] = Handoff.objects.filter(contact=merged).update(contact=kept)
    both = DealContact.objects.filter(contact=kept).values_list("deal_id", flat=True)
    DealContact.objects.filter(contact=merged, deal_id__in=list(both)).delete()
    moved["deal_memberships"] = DealContact.objects.filter(contact=merged).update(contact=kept)
    Qualification.objects.filter(contact=merged).update(contact=kept)
    return moved


def contact_personal_data_erase(contact_ids: list[int]) -> None:
    """Erasure: free-text notes about the person may hold personal data; empty them."""
    Handoff.objects.filter(contact_id__in=contact_ids).update(note="", decision_note="")
