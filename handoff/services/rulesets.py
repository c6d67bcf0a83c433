"""Rulesets: drafting, changing and activating the scoring rules, and rescoring everyone by them."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from contacts.models import (
    Contact,
    TouchKind,
)
from contacts.selectors import channels_all
from leadrecord.dispatch import task_send_on_commit
from leadrecord.errors import Conflict, InvalidInput
from leadrecord.ledger import Actor, LedgerDraft, ledger_append, ledger_append_many, ledger_lock
from leadrecord.models import LedgerAction

from ..models import (
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_SOURCING_WINDOW_DAYS,
    Ruleset,
    RulesetStatus,
)
from ..scoring import contacts_rescore

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
            action=LedgerAction.RULESET_CREATE,
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
                action=LedgerAction.RULESET_UPDATE,
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
                    action=LedgerAction.RULESET_RETIRE,
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
                action=LedgerAction.RULESET_ACTIVATE,
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

        from ..tasks import contacts_rescore_all_task

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
