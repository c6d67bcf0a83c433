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

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from contacts.models import Audience, Contact, Disclosure, Touch
from leadrecord.ledger import Actor, LedgerDraft, ledger_append_many

from .models import Qualification, Ruleset, RulesetStatus

# Sales decides on what the person shared with sales (or everyone).
SCORED_AUDIENCES = (Audience.SALES, Audience.ALL)
POINT_PREFIXES = ("channel", "kind", "disclosure")


def ruleset_active() -> Ruleset | None:
    return Ruleset.objects.filter(status=RulesetStatus.ACTIVE).first()


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
    contacts = list(
        Contact.objects.filter(
            pk__in=set(contact_ids), erased_at__isnull=True, merged_into__isnull=True
        ).only("id", "score", "qualified")
    )
    if not contacts:
        return []
    now = timezone.now()
    scores = scores_compute([contact.pk for contact in contacts], ruleset, now=now)
    changed: list[Contact] = []
    flipped: list[Contact] = []
    for contact in contacts:
        score = scores[contact.pk]
        qualified = score >= ruleset.mql_threshold
        if score == contact.score and qualified == contact.qualified:
            continue
        if qualified != contact.qualified:
            flipped.append(contact)
        contact.score = score
        contact.qualified = qualified
        changed.append(contact)
    if changed:
        Contact.objects.bulk_update(changed, ["score", "qualified"], batch_size=1000)
    if flipped:
        Qualification.objects.bulk_create(
            [
                Qualification(
                    contact_id=contact.pk,
                    ruleset=ruleset,
                    score=contact.score,
                    qualified=contact.qualified,
                    occurred_at=now,
                )
                for contact in flipped
            ],
            batch_size=1000,
        )
        ledger_append_many(
            [
                LedgerDraft(
                    actor=actor,
                    action="contact.qualify" if contact.qualified else "contact.unqualify",
                    subject_type="contact",
                    subject_id=contact.pk,
                    contact_id=contact.pk,
                    after={
                        "score": contact.score,
                        "qualified": contact.qualified,
                        "threshold": ruleset.mql_threshold,
                        "ruleset_version": ruleset.version,
                    },
                )
                for contact in flipped
            ]
        )
    newly_qualified = [contact.pk for contact in flipped if contact.qualified]
    if hand_off and ruleset.auto_handoff:
        from .services import handoffs_create_automatic

        handoffs_create_automatic(
            [contact.pk for contact in contacts if contact.qualified], ruleset=ruleset
        )
    return newly_qualified
