""" "K changes since" a run without counting the ledger since it on every request.

The changes a run may be missing are the ledger entries after its mark that can move a
credit (``ATTRIBUTION_ACTIONS``, and analytics consents). Counted on every page, that is a
walk over every entry since the run: millions while events stream in between two runs.
The report update (``reports.aggregates``) notes instead, with each state of the
aggregates, how many such entries the ledger holds up to the state's mark
(``AttributionChangeCount``), adding only the entries since the state before. The changes
after a run's mark are then the latest note less the note at or before the run's mark, less
the entries between that note and the run's mark, plus the entries after the latest note:
two short walks of the primary key over the seconds between two updates.

Every change is on the ledger and its entries commit in seq order (one lock held to
commit), so a note counts exactly the entries up to its mark, and the answer is the same
number the walk gives. The ledger's start is a note of its own (nothing before it); when
the entries since the run are fewer than those around the notes (no update yet, or a run
older than the notes kept and not older than the ledger) they are counted as before.
"""

from __future__ import annotations

from django.db.models import Q, Subquery

from contacts.models import ConsentPurpose
from leadrecord.models import LedgerAction, LedgerEntry

from .models import AttributionChangeCount, AttributionRun, RunStatus
from .selectors import run_latest_complete
from .snapshot import snapshot_ledger_head

# What can move a credit: conversions and their deals' buying groups, touches, the
# ruleset (its lookback), analytics consent (paths leave out people who withdrew it),
# merges and erasures (they move or drop touches), accepted handoffs (W-shaped's marker)
# and channels' teams (credit by team).
ATTRIBUTION_ACTIONS = (
    LedgerAction.SALE_RECORD,
    LedgerAction.TOUCH_RECORD,
    LedgerAction.RULESET_ACTIVATE,
    LedgerAction.DEAL_CREATE,
    LedgerAction.DEAL_MEMBER_ADD,
    LedgerAction.HANDOFF_ACCEPT,
    LedgerAction.CONTACT_MERGE,
    LedgerAction.CONTACT_ERASE,
    LedgerAction.CHANNEL_UPDATE,
)


def attribution_relevant() -> Q:
    """Ledger entries that can move a credit."""
    return Q(action__in=ATTRIBUTION_ACTIONS) | Q(
        action=LedgerAction.CONSENT_RECORD, after__purpose=ConsentPurpose.ANALYTICS
    )


def run_mark(run: AttributionRun) -> int:
    """The ledger seq the run read the record at (for a run from before marks were kept,
    its own ledger entry, appended as it completed)."""
    if run.ledger_mark is not None:
        return run.ledger_mark
    own = (
        LedgerEntry.objects.filter(
            subject_type="attribution_run",
            subject_id=str(run.pk),
            action=LedgerAction.ATTRIBUTION_RUN,
        )
        .values_list("seq", flat=True)
        .first()
    )
    return own or 0


def _counted(low: int, high: int) -> int:
    """Entries that can move a credit with low < seq <= high. Both bounds are numbers, so
    PostgreSQL walks the primary key over that stretch alone."""
    if high <= low:
        return 0
    return (
        LedgerEntry.objects.filter(seq__gt=low, seq__lte=high)
        .filter(attribution_relevant())
        .count()
    )


def changes_after(mark: int) -> int:
    """How many entries that can move a credit the ledger holds after ``mark``."""
    head = snapshot_ledger_head()
    notes = AttributionChangeCount.objects.filter(ledger_mark__lte=head)
    # The latest note and the one at or before the mark, in one query (marks are unique).
    newest = notes.order_by("-ledger_mark").values("ledger_mark")[:1]
    at_mark = notes.filter(ledger_mark__lte=mark).order_by("-ledger_mark").values("ledger_mark")[:1]
    both = sorted(
        notes.filter(Q(ledger_mark=Subquery(newest)) | Q(ledger_mark=Subquery(at_mark))),
        key=lambda note: note.ledger_mark,
    )
    if not both:
        return _counted(mark, head)
    latest = both[-1]
    # Before the first entry there is nothing to count: a note of its own.
    floor = both[0] if both[0].ledger_mark <= mark else None
    floor_mark, floor_changes = (floor.ledger_mark, floor.changes) if floor else (0, 0)
    walked = (mark - floor_mark) + (head - max(mark, latest.ledger_mark))
    if walked >= head - mark:
        # A run older than the notes kept: the entries since it are the shorter walk.
        return _counted(mark, head)
    return (
        latest.changes
        - floor_changes
        - _counted(floor_mark, min(mark, latest.ledger_mark))
        + _counted(max(mark, latest.ledger_mark), head)
    )


def change_count_record(mark: int) -> None:
    """Note the changes up to ``mark`` (in the report update's transaction, ``mark`` being
    its state's): the last note's count and the entries since it; the first note counts
    the ledger from its start, once. Notes no run needs any longer go."""
    last = AttributionChangeCount.objects.order_by("-ledger_mark").first()
    if last is not None and last.ledger_mark >= mark:
        return
    since = last.ledger_mark if last is not None else 0
    AttributionChangeCount.objects.create(
        ledger_mark=mark, changes=(last.changes if last is not None else 0) + _counted(since, mark)
    )
    _notes_prune()


def _notes_prune() -> None:
    """Keep the notes from the one at or before the earliest mark a reader asks about (the
    latest complete run's and any run in flight) onwards, and the latest two besides."""
    marks = [
        run_mark(run)
        for run in AttributionRun.objects.filter(
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING], ledger_mark__isnull=False
        )
    ]
    complete = run_latest_complete()
    if complete is not None:
        marks.append(run_mark(complete))
    kept = list(
        AttributionChangeCount.objects.order_by("-ledger_mark").values_list(
            "ledger_mark", flat=True
        )[:2]
    )
    if marks:
        floor = (
            AttributionChangeCount.objects.filter(ledger_mark__lte=min(marks))
            .order_by("-ledger_mark")
            .values_list("ledger_mark", flat=True)
            .first()
        )
        if floor is not None:
            kept.append(floor)
    AttributionChangeCount.objects.filter(ledger_mark__lt=min(kept)).delete()
