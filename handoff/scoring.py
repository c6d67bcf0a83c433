"""Scores and qualification under the active ruleset.

A contact's score is the sum, over its touches, of the points for the touch's
channel (``channel:<key>``) and kind (``kind:<kind>``), plus, once per key, the
points for each disclosure sales may see (``disclosure:<key>``; audience
``sales`` or ``all``, neither withdrawn nor expired). Qualified means a score at
or over the ruleset's MQL threshold.

``contacts_rescore`` is set-based (two grouped queries whatever the number of
contacts), so a batch of ingested events pays for it once. It runs inside the
writing service's transaction, after the ledger lock is held, and records each
change of qualified state (a ``Qualification`` row and a ledger entry naming the
ruleset version).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from contacts.models import Audience, Contact, Disclosure, Touch
from leadrecord.bulk import rows_update
from leadrecord.ledger import Actor, LedgerDraft, ledger_append_many
from leadrecord.models import LedgerAction

from .models import Qualification, Ruleset
from .selectors import ruleset_active

# Sales decides on what the person shared with sales (or everyone).
SCORED_AUDIENCES = (Audience.SALES, Audience.ALL)
POINT_PREFIXES = ("channel", "kind", "disclosure")


def scores_compute(
    contact_ids: Iterable[int], ruleset: Ruleset, *, now: datetime | None = None
) -> dict[int, int]:
    """Each contact's score under ``ruleset`` (every given id gets one, 0 if nothing counts)."""
    ids = sorted(set(contact_ids))
    now = now or timezone.now()
    points: dict[str, int] = {str(key): int(value) for key, value in ruleset.points.items()}
    scores = dict.fromkeys(ids, 0)
    if not ids:
        return scores
    if any(key.startswith(("channel:", "kind:")) for key in points):
        touch_counts = (
            Touch.objects.filter(contact_id__in=ids)
            .values_list("contact_id", "channel__key", "kind")
            .annotate(count=Count("id"))
            .order_by()
        )
        for contact_id, channel_key, kind, count in touch_counts:
            per_touch = points.get(f"channel:{channel_key}", 0) + points.get(f"kind:{kind}", 0)
            scores[contact_id] += per_touch * count
    if any(key.startswith("disclosure:") for key in points):
        disclosed = (
            Disclosure.objects.filter(
                contact_id__in=ids, audience__in=SCORED_AUDIENCES, withdrawn_at__isnull=True
            )
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .values_list("contact_id", "key")
            .distinct()
            .order_by()
        )
        for contact_id, key in disclosed:
            scores[contact_id] += points.get(f"disclosure:{key}", 0)
    return scores


@dataclass
class _ScoreState:
    contact_id: int
    score: int
    qualified: bool


def _living_states(contact_ids: Iterable[int]) -> list[_ScoreState]:
    rows = Contact.objects.filter(
        pk__in=set(contact_ids), erased_at__isnull=True, merged_into__isnull=True
    ).values_list("id", "score", "qualified")
    return [_ScoreState(*row) for row in rows]


def contacts_rescore(
    contact_ids: Iterable[int],
    *,
    actor: Actor,
    ruleset: Ruleset | None = None,
    hand_off: bool = True,
) -> list[int]:
    """Recompute scores of living contacts; record qualification changes. Returns the newly
    qualified ids.

    Must run inside the caller's transaction with the ledger lock held. With
    no active ruleset nothing changes: scores are only ever what a ruleset said.
    When the ruleset hands off automatically and ``hand_off`` is true,
    qualified people with the buyer's say-so are handed off (once per
    qualification: see ``handoffs_create_automatic``).
    """
    ruleset = ruleset or ruleset_active()
    if ruleset is None:
        return []
    states = _living_states(contact_ids)
    if not states:
        return []
    now = timezone.now()
    scores = scores_compute([state.contact_id for state in states], ruleset, now=now)
    return _scores_apply(states, scores, ruleset, actor, now=now, hand_off=hand_off)


def contacts_score_touches(
    touches: Iterable[tuple[int, str, str]], *, actor: Actor, hand_off: bool = True
) -> list[int]:
    """Add the points of new touches ``(contact id, channel key, kind)`` to their people.

    Touch points only add up, so a batch of touches needs no recount of
    everyone's history: the stored score (kept under the active ruleset, and
    recounted in full when a ruleset is activated) plus the new points is the
    score. Same contract as ``contacts_rescore``.
    """
    ruleset = ruleset_active()
    if ruleset is None:
        return []
    points: dict[str, int] = {str(key): int(value) for key, value in ruleset.points.items()}
    added: dict[int, int] = defaultdict(int)
    for contact_id, channel_key, kind in touches:
        gained = points.get(f"channel:{channel_key}", 0) + points.get(f"kind:{kind}", 0)
        if gained:
            added[contact_id] += gained
    if not added:
        return []
    states = _living_states(added)
    scores = {state.contact_id: state.score + added[state.contact_id] for state in states}
    return _scores_apply(states, scores, ruleset, actor, now=timezone.now(), hand_off=hand_off)


def _scores_apply(
    states: list[_ScoreState],
    scores: dict[int, int],
    ruleset: Ruleset,
    actor: Actor,
    *,
    now: datetime,
    hand_off: bool,
) -> list[int]:
    """Store new scores; record each change of qualified state; hand off if the rules say so."""
    changed: list[_ScoreState] = []
    flipped: list[_ScoreState] = []
    for state in states:
        score = scores[state.contact_id]
        qualified = score >= ruleset.mql_threshold
        if score == state.score and qualified == state.qualified:
            continue
        if qualified != state.qualified:
            flipped.append(state)
        state.score = score
        state.qualified = qualified
        changed.append(state)
    if changed:
        rows_update(
            Contact,
            ("score", "qualified"),
            [(state.contact_id, state.score, state.qualified) for state in changed],
        )
    if flipped:
        Qualification.objects.bulk_create(
            [
                Qualification(
                    contact_id=state.contact_id,
                    ruleset=ruleset,
                    score=state.score,
                    qualified=state.qualified,
                    occurred_at=now,
                )
                for state in flipped
            ],
            batch_size=1000,
        )
        ledger_append_many(
            [
                LedgerDraft(
                    actor=actor,
                    action=(
                        LedgerAction.CONTACT_QUALIFY
                        if state.qualified
                        else LedgerAction.CONTACT_UNQUALIFY
                    ),
                    subject_type="contact",
                    subject_id=state.contact_id,
                    contact_id=state.contact_id,
                    after={
                        "score": state.score,
                        "qualified": state.qualified,
                        "threshold": ruleset.mql_threshold,
                        "ruleset_version": ruleset.version,
                    },
                )
                for state in flipped
            ]
        )
    newly_qualified = [state.contact_id for state in flipped if state.qualified]
    if hand_off and ruleset.auto_handoff:
        from .services import handoffs_create_automatic

        handoffs_create_automatic(
            [state.contact_id for state in states if state.qualified], ruleset=ruleset
        )
    return newly_qualified
