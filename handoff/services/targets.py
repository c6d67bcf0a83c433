"""Contribution targets: the share of revenue marketing aims to source in a quarter."""

from __future__ import annotations

import re
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from leadrecord.errors import InvalidInput
from leadrecord.ledger import Actor, ledger_append, ledger_lock
from leadrecord.models import LedgerAction

from ..models import (
    ContributionTarget,
)

_PERIOD = re.compile(r"^(\d{4})-Q([1-4])$")
# Targets are agreed for the quarters around now: one further off is a typing mistake
# (1999-Q1, 2099-Q1), and a report would never read it.
TARGET_YEARS_AROUND = 5


def target_years() -> tuple[int, int]:
    """The first and last year a target may be set for, around this year (reporting zone)."""
    this_year = timezone.localdate().year
    return this_year - TARGET_YEARS_AROUND, this_year + TARGET_YEARS_AROUND


def target_set(*, period: str, share: Decimal, actor: Actor) -> tuple[ContributionTarget, bool]:
    """Set marketing's agreed share of pipeline for a quarter (a new value replaces the old)."""
    match = _PERIOD.match(period)
    if not match:
        raise InvalidInput("invalid", "A period is a quarter like 2026-Q3.", attr="period")
    first, last = target_years()
    if not first <= int(match.group(1)) <= last:
        raise InvalidInput(
            "out_of_range",
            f"Give a quarter from {first}-Q1 to {last}-Q4.",
            attr="period",
        )
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
            action=LedgerAction.TARGET_SET,
            subject_type="target",
            subject_id=period,
            before=before,
            after={"marketing_pipeline_share": str(share)},
        )
    return target, created
