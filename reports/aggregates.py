"""The aggregates behind the people counts: kept up to date from the ledger, rebuilt on request.

Counting "people with a touch from s to e" straight from millions of touches costs a scan
per request. ``TouchDay`` (one row per person and day with a touch, with the person's
previous such day) answers it exactly; ``TouchDayCount`` (the same counted per day and
previous day, cumulatively) answers it with one index probe per day on PostgreSQL.
``PersonMilestone`` (one row per person: created, first touch, first won) and
``CreatedDayCount`` answer "contacts created by e" and the times in the first and last
stages.

Each state of the aggregates is a ``PeopleRefresh`` row: the ledger seq it is as of
(``ledger_mark``) and the last touch, contact, sale event and deal member it includes.
``people_aggregates_update`` (a periodic job, ``reports.tasks``) brings them forward: the
ledger entries after the mark name every person whose rows may have changed (a touch, a
new person, a merge, a deal member, a won sale), and only those people's rows are worked
out again, from the record, with the cumulative counts moved by the difference. The
ledger is appended under one lock held to commit, so its seqs commit in order and "the
entries after the mark" misses nothing. ``people_aggregates_refresh`` rebuilds them all
(``manage.py rebuild_people_aggregates``, and the first update on a database that has
none).

Either writes in one transaction, so a reader sees the state before it or after it; a
reader takes its own queries from one snapshot (``consistent_read``), so it never pairs
one state's marks with another's rows. ``reports.metrics_people`` counts the rows written
since the marks, and the people merged since, live on top, so the numbers are exact at any
moment. (The one gap: a row whose transaction was still open while an update read, yet got
a lower id than the last one read, waits for the next update.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.db.models.expressions import RawSQL
from django.utils import timezone

from contacts.models import Contact, Touch
from handoff.models import Deal, DealContact, SaleEvent, SaleKind
from leadrecord.ledger import ledger_head_seq
from leadrecord.models import LedgerAction, LedgerEntry

from .aggregates_sql import (
    people_sql,
    people_with_milestones,
    rebuild_sql,
    touches_added_sql,
)
from .change_counts import change_count_record
from .models import (
    CreatedDayCount,
    CustomerDay,
    CustomerDayCount,
    FirstTouchHour,
    PeopleRefresh,
    PersonMilestone,
    TouchDay,
    TouchDayCount,
)
from .rollups import (
    SalesMarks,
    sales_days_changed,
    sales_rollup_write,
    uncredited_sales_record,
)
from .snapshot import (
    snapshot_heads_carried,
    snapshot_heads_columns,
    snapshot_open,
    snapshot_remember,
)

# After the update proper, at most this many short passes over what arrived meanwhile.
CATCH_UP_PASSES = 2
# Any fixed 64-bit number names the advisory lock; this one spells "PEOPLE".
_UPDATE_LOCK_KEY = 0x50454F504C45
# The ledger actions that name a person whose aggregate rows may change (a won sale names
# a deal: its members are looked up).
PERSON_ACTIONS = (
    LedgerAction.TOUCH_RECORD,
    LedgerAction.CONTACT_CREATE,
    LedgerAction.CONTACT_MERGE,
    LedgerAction.CONTACT_ERASE,
    LedgerAction.DEAL_MEMBER_ADD,
)


_AGGREGATES = (
    TouchDay,
    TouchDayCount,
    PersonMilestone,
    CreatedDayCount,
    CustomerDay,
    CustomerDayCount,
    FirstTouchHour,
)


@dataclass(frozen=True)
class Marks:
    """What a state of the aggregates includes: rows up to these ids, ledger up to this seq."""

    ledger_mark: int
    last_touch_id: int
    last_contact_id: int
    last_sale_event_id: int
    last_deal_member_id: int
    last_deal_id: int

    @property
    def sales(self) -> SalesMarks:
        return SalesMarks(self.ledger_mark, self.last_deal_id, self.last_sale_event_id)


def _marks_now() -> Marks:
    # The ledger head first: every row whose entry is at or before it is committed, so the
    # ids read next are at least its rows' ids.
    head = ledger_head_seq()
    return Marks(
        ledger_mark=head,
        last_touch_id=Touch.objects.aggregate(last=Max("id"))["last"] or 0,
        last_contact_id=Contact.objects.aggregate(last=Max("id"))["last"] or 0,
        last_sale_event_id=SaleEvent.objects.aggregate(last=Max("id"))["last"] or 0,
        last_deal_member_id=DealContact.objects.aggregate(last=Max("id"))["last"] or 0,
        last_deal_id=Deal.objects.aggregate(last=Max("id"))["last"] or 0,
    )


@contextmanager
def _writing(*, wait: bool) -> Iterator[bool]:
    """A transaction holding the update lock; yields whether it got it (without ``wait``,
    another update in progress means this one has nothing to do).

    Each statement reads what is committed when it runs (READ COMMITTED): the rows are
    bounded by the marks read first, and a row committed in between with an id under
    them is simply worked out again by the next update."""
    with transaction.atomic():
        if connection.vendor != "postgresql":
            # SQLite: IMMEDIATE transactions (settings) already hold the one write lock.
            yield True
            return
        with connection.cursor() as cursor:
            if wait:
                cursor.execute("SELECT pg_advisory_xact_lock(%s), true", [_UPDATE_LOCK_KEY])
            else:
                cursor.execute("SELECT 0, pg_try_advisory_xact_lock(%s)", [_UPDATE_LOCK_KEY])
            yield bool(cursor.fetchone()[1])


def people_aggregates_refresh() -> PeopleRefresh:
    """Rebuild the people aggregates from the record, atomically: readers see the previous
    ones until this transaction commits."""
    with _writing(wait=True):
        # Taken before reading, so a merge committed during the rebuild counts as "since".
        refreshed_at = timezone.now()
        marks = _marks_now()
        for model in _AGGREGATES:
            model.objects.all().delete()
        # PostgreSQL: one set-based rebuild, which bench/report_latency.py's record of
        # ten million touches needs; elsewhere (the embedded SQLite default) the Python
        # rebuild writes the same rows.
        if connection.vendor == "postgresql":
            rebuild_sql(marks)
        else:
            created = _people_python(marks, None)
            _created_counts_apply(created)
        sales_rollup_write(marks.sales, None)
        uncredited_sales_record()
        return _state_record(refreshed_at, marks)


def people_refresh_latest() -> PeopleRefresh | None:
    """The aggregates' latest state (read once per reader's snapshot: a page's reports
    all start from it)."""
    return snapshot_remember("people_refresh_latest", _people_refresh_latest_read)


def _people_refresh_latest_read() -> PeopleRefresh | None:
    latest = PeopleRefresh.objects.order_by("-id")
    if connection.vendor != "postgresql" or not snapshot_open():
        return latest.first()
    # A reader's snapshot on PostgreSQL: what every reader of the state asks next rides
    # along (each query is one more wait while events stream in): the merges since it,
    # as [merged, survivor] pairs (``merges_since``), and the snapshot's heads.
    contacts = connection.ops.quote_name(Contact._meta.db_table)
    refreshes = connection.ops.quote_name(PeopleRefresh._meta.db_table)
    merges = RawSQL(  # noqa: S611 (the table names from the models, no values)
        f"ARRAY(SELECT ARRAY[merged.id, merged.merged_into_id] FROM {contacts} AS merged "  # noqa: S608
        "WHERE merged.merged_into_id IS NOT NULL "
        f"AND merged.merged_at >= {refreshes}.refreshed_at)",
        (),
    )
    state = latest.annotate(merges_since=merges, **snapshot_heads_columns()).first()
    if state is not None:
        snapshot_heads_carried(state)
    return state


def people_aggregates_update() -> PeopleRefresh | None:
    """Bring the people aggregates up to the ledger's head: the people named by the entries
    after the latest state's mark are worked out again. Safe to run twice, or at once from
    two processes (the second finds the lock taken and returns None). The first update on a
    database whose aggregates have no ledger mark rebuilds them whole."""
    latest = people_refresh_latest()
    if latest is None or latest.ledger_mark is None or latest.time_zone != settings.TIME_ZONE:
        # None yet, from before marks were kept, or with days in another zone.
        return people_aggregates_refresh()
    with _writing(wait=False) as locked:
        if not locked:
            return None
        latest = people_refresh_latest()
        if latest is None or latest.ledger_mark is None:
            return None  # a rebuild is under way elsewhere; the next update goes on from it
        refreshed_at = timezone.now()
        marks = _marks_now()
        if marks.ledger_mark <= latest.ledger_mark and marks == _marks_of(latest):
            uncredited_sales_record()  # a run may have completed with nothing else new
            change_count_record(marks.ledger_mark)  # a state from before the notes were kept
            return latest
        before = _marks_of(latest)
        moved = _people_bring_forward(before, marks)
        # Events kept arriving while that ran: short passes bring the state up to what is
        # committed now, so that readers start the new state with little to count live
        # (each reads what the state does not know yet on every request).
        for _ in range(CATCH_UP_PASSES):
            newer = _marks_now()
            if newer == marks:
                break
            step = _people_bring_forward(marks, newer)
            moved = None if moved is None or step is None else moved + step
            marks = newer
        sales_rollup_write(marks.sales, sales_days_changed(before.sales, marks.sales))
        uncredited_sales_record()
        counts = (
            {}
            if moved is None
            else {
                "touch_days": latest.touch_days + moved.touch_days,
                "people": latest.people + moved.people,
            }
        )
        return _state_record(refreshed_at, marks, **counts)


@dataclass(frozen=True)
class _Moved:
    """How many ``TouchDay`` and ``PersonMilestone`` rows an update added (less removed)."""

    touch_days: int
    people: int

    def __add__(self, other: _Moved) -> _Moved:
        return _Moved(self.touch_days + other.touch_days, self.people + other.people)


def _people_bring_forward(before: Marks, after: Marks) -> _Moved | None:
    """Move the people aggregates from the state ``before`` to ``after``: the people changed
    in between are worked out again (or have their new touches added). On PostgreSQL,
    returns how many rows that added; elsewhere None (the rows are counted)."""
    changed = people_changed_between(before, after)
    if connection.vendor != "postgresql":
        everyone = changed.everyone
        _created_counts_apply(_people_python(after, everyone) if everyone else Counter())
        return None
    # People whose touches were only added take the cheap path; the aggregates must know
    # them already (a milestone row), else they are worked out whole.
    touched = people_with_milestones(sorted(changed.touched))
    whole = sorted(changed.whole | (changed.touched - touched))
    written = people_sql(after, whole) if whole else None
    added = 0
    if touched:
        added = touches_added_sql(
            after,
            since_touch_id=before.last_touch_id,
            late_touch_ids=list(changed.late_touch_ids),
            people=sorted(touched),
        )
    created = written.created if written else Counter()
    _created_counts_apply(created)
    return _Moved(added + (written.touch_days if written else 0), sum(created.values()))


def _marks_of(refresh: PeopleRefresh) -> Marks:
    return Marks(
        ledger_mark=refresh.ledger_mark or 0,
        last_touch_id=refresh.last_touch_id,
        last_contact_id=refresh.last_contact_id,
        last_sale_event_id=refresh.last_sale_event_id,
        last_deal_member_id=refresh.last_deal_member_id,
        last_deal_id=refresh.last_deal_id,
    )


@dataclass(frozen=True)
class PeopleChanged:
    """Who changed between two states of the aggregates.

    ``whole``: people whose rows are worked out again from the record (new, merged,
    erased, in a deal or a win). ``touched``: people whose only change is touches added,
    whose rows those touches only add to; ``late_touch_ids`` are such touches below the
    earlier state's touch mark (committed after it was read), which the ledger names."""

    whole: frozenset[int]
    touched: frozenset[int]
    late_touch_ids: tuple[int, ...]

    @property
    def everyone(self) -> list[int]:
        return sorted(self.whole | self.touched)


def people_changed_between(before: Marks, after: Marks) -> PeopleChanged:
    """The people whose aggregate rows may differ between two states: those the ledger
    entries between the two marks name, and those of the rows written between the two
    sets of ids (a row put in without the ledger, as a bulk load does, included)."""
    entries = LedgerEntry.objects.filter(seq__gt=before.ledger_mark, seq__lte=after.ledger_mark)
    whole: set[int] = set()
    touched: set[int] = set()
    late: list[int] = []
    for action, contact_id, subject_id in entries.filter(action__in=PERSON_ACTIONS).values_list(
        "action", "contact_id", "subject_id"
    ):
        if contact_id is None:
            continue
        if action != LedgerAction.TOUCH_RECORD or not subject_id.isdigit():
            whole.add(contact_id)
            continue
        touched.add(contact_id)
        if int(subject_id) <= before.last_touch_id:
            late.append(int(subject_id))
    won_deals = {
        int(deal)
        for deal, after_values in entries.filter(action=LedgerAction.SALE_RECORD).values_list(
            "subject_id", "after"
        )
        if isinstance(after_values, dict) and after_values.get("kind") == SaleKind.WON
    }
    won_deals.update(
        SaleEvent.objects.filter(
            kind=SaleKind.WON,
            id__gt=before.last_sale_event_id,
            id__lte=after.last_sale_event_id,
        ).values_list("deal_id", flat=True)
    )
    if won_deals:
        whole.update(
            DealContact.objects.filter(deal_id__in=won_deals).values_list("contact_id", flat=True)
        )
    touched.update(
        Touch.objects.filter(id__gt=before.last_touch_id, id__lte=after.last_touch_id)
        .values_list("contact_id", flat=True)
        .distinct()
        .order_by()
    )
    whole.update(
        Contact.objects.filter(
            id__gt=before.last_contact_id, id__lte=after.last_contact_id
        ).values_list("id", flat=True)
    )
    whole.update(
        DealContact.objects.filter(
            id__gt=before.last_deal_member_id, id__lte=after.last_deal_member_id
        ).values_list("contact_id", flat=True)
    )
    return PeopleChanged(frozenset(whole), frozenset(touched - whole), tuple(sorted(late)))


def _state_record(
    refreshed_at: datetime,
    marks: Marks,
    *,
    touch_days: int | None = None,
    people: int | None = None,
) -> PeopleRefresh:
    """Note a new state; ``touch_days`` and ``people`` (the rows of ``TouchDay`` and
    ``PersonMilestone``) are counted when not given (an update moves them by what it wrote:
    counting ten million rows at every update was most of a small one)."""
    bounds = TouchDay.objects.aggregate(first=Min("day"), last=Max("day"))
    state = PeopleRefresh.objects.create(
        refreshed_at=refreshed_at,
        ledger_mark=marks.ledger_mark,
        last_touch_id=marks.last_touch_id,
        last_contact_id=marks.last_contact_id,
        last_sale_event_id=marks.last_sale_event_id,
        last_deal_member_id=marks.last_deal_member_id,
        last_deal_id=marks.last_deal_id,
        time_zone=settings.TIME_ZONE,
        first_touch_day=bounds["first"],
        last_touch_day=bounds["last"],
        touch_days=TouchDay.objects.count() if touch_days is None else touch_days,
        people=PersonMilestone.objects.count() if people is None else people,
    )
    # Superseded states are of no use: readers take the latest (one still reading an older
    # one keeps its snapshot).
    PeopleRefresh.objects.filter(id__lt=state.pk).delete()
    change_count_record(marks.ledger_mark)
    return state


def _created_counts_apply(deltas: Counter[date]) -> None:
    """Move ``CreatedDayCount`` (people created on or before each day) by the change in
    people created per day: the days from the earliest change on are read and rewritten
    (one row per day with anyone created, a few hundred a year)."""
    changed = {day: delta for day, delta in deltas.items() if delta}
    if not changed:
        return
    first = min(changed)
    before = (
        CreatedDayCount.objects.filter(day__lt=first)
        .order_by("-day")
        .values_list("people", flat=True)
        .first()
    ) or 0
    rows = dict(
        CreatedDayCount.objects.filter(day__gte=first).order_by("day").values_list("day", "people")
    )
    per_day: Counter[date] = Counter()
    running = before
    for day, people in rows.items():
        per_day[day] = people - running
        running = people
    per_day.update(changed)
    wanted: dict[date, int] = {}
    running = before
    for day in sorted(per_day):
        if per_day[day]:
            running += per_day[day]
            wanted[day] = running
    CreatedDayCount.objects.filter(day__in=[day for day in rows if day not in wanted]).delete()
    for day, people in wanted.items():
        if rows.get(day) != people:
            CreatedDayCount.objects.update_or_create(day=day, defaults={"people": people})


# --- elsewhere (the embedded SQLite default): the same rows, worked out in Python -------------


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


DayRow = TypeVar("DayRow", TouchDay, CustomerDay)


def _day_rows(model: type[DayRow], days: dict[int, set[date]]) -> list[DayRow]:
    """Each person's days in order, each with the one before."""
    rows: list[DayRow] = []
    for contact_id, person_days in days.items():
        previous = None
        for day in sorted(person_days):
            rows.append(model(contact_id=contact_id, day=day, previous_day=previous))
            previous = day
    return rows


def _people_python(marks: Marks, people: list[int] | None) -> Counter[date]:
    """Write ``TouchDay`` and ``PersonMilestone`` for these people (None: everyone) afresh,
    returning the change in people created per day. SQLite has no time zones in SQL;
    ``TouchDayCount`` stays empty there (counts read ``TouchDay``)."""
    zone = ZoneInfo(settings.TIME_ZONE)

    def only(rows: Iterable[int] | None, field: str) -> dict[str, object]:
        return {} if rows is None else {f"{field}__in": rows}

    created: Counter[date] = Counter()
    if people is not None:
        TouchDay.objects.filter(contact_id__in=people).delete()
        CustomerDay.objects.filter(contact_id__in=people).delete()
        for moment in PersonMilestone.objects.filter(contact_id__in=people).values_list(
            "created_at", flat=True
        ):
            created[_local_day(moment, zone)] -= 1
        PersonMilestone.objects.filter(contact_id__in=people).delete()
    days: dict[int, set[date]] = {}
    first_touch: dict[int, datetime] = {}
    for contact_id, moment in Touch.objects.filter(
        id__lte=marks.last_touch_id, **only(people, "contact_id")
    ).values_list("contact_id", "occurred_at"):
        days.setdefault(contact_id, set()).add(_local_day(moment, zone))
        if contact_id not in first_touch or moment < first_touch[contact_id]:
            first_touch[contact_id] = moment
    TouchDay.objects.bulk_create(_day_rows(TouchDay, days), batch_size=1000)
    won_at = dict(
        SaleEvent.objects.filter(kind=SaleKind.WON, id__lte=marks.last_sale_event_id).values_list(
            "deal_id", "occurred_at"
        )
    )
    first_won: dict[int, datetime] = {}
    won_days: dict[int, set[date]] = {}
    for contact_id, deal_id in DealContact.objects.filter(
        id__lte=marks.last_deal_member_id, deal_id__in=list(won_at), **only(people, "contact_id")
    ).values_list("contact_id", "deal_id"):
        moment = won_at[deal_id]
        won_days.setdefault(contact_id, set()).add(_local_day(moment, zone))
        if contact_id not in first_won or moment < first_won[contact_id]:
            first_won[contact_id] = moment
    CustomerDay.objects.bulk_create(_day_rows(CustomerDay, won_days), batch_size=1000)
    persons = list(
        Contact.objects.filter(
            merged_into__isnull=True, id__lte=marks.last_contact_id, **only(people, "id")
        ).values_list("id", "created_at")
    )
    PersonMilestone.objects.bulk_create(
        [
            PersonMilestone(
                contact_id=contact_id,
                created_at=created_at,
                first_touch_at=first_touch.get(contact_id),
                first_won_at=first_won.get(contact_id),
            )
            for contact_id, created_at in persons
        ],
        batch_size=1000,
    )
    for _, created_at in persons:
        created[_local_day(created_at, zone)] += 1
    return created
