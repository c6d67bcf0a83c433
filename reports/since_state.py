"""What the touches written since the aggregates' state add to a report, read once.

A report counts live, on top of the aggregates' latest state, what the touches written
since it add (``reports.metrics_people``: the people touched in a range the state does
not count; ``reports.metrics_funnel``: the people whose first touch moved). While events
stream in, those touches are thousands, and every request read them all again.

Per process, each such answer is kept with where its reading stopped: the highest touch
id read and the ledger head of the snapshot that read it. The next request for the same
state reads only what came since: touches past that id, and touches below it that the
ledger names after that head (a bulk post inserts its touches before it takes the ledger
lock, so a touch with a lower id can commit later; its entry is then after the head, as
entries are appended under the lock held to commit). A request whose snapshot is older
than the kept answer reads everything, as before. Each answer is a union over touches
(a person is in it if any touch since puts them there), so reading in parts gives what
one read gives.

A new state need not start afresh. A reader that can say which of some people the touches
in an id range find (``recheck``) has its answer for the state before carried over: when
nothing between the two states' ledger marks merged or erased anyone, the new state's rows
only add to the old one's (touches added, people worked out again from a record that only
gained touches), so whoever the touches after the new state's mark find under it, the same
touches found under the old state too, and is in the kept answer. The kept people are
asked again under the new state over the touches from its mark to where the kept reading
stopped, and the reading goes on from there as for the same state. Otherwise (a merge or
an erasure between the two, another time zone, a kept reading that stopped short of the
new mark) the new state is read whole, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from leadrecord.models import LedgerAction, LedgerEntry

from .models import PeopleRefresh
from .snapshot import snapshot_heads

# read(after_id, up_to_id, also_ids): what the touches with an id in (after_id, up_to_id],
# or in also_ids, find (in the caller's snapshot).
Read = Callable[[int, int, list[int]], set[int]]
# recheck(people, after_id, up_to_id): which of ``people`` the touches with an id in
# (after_id, up_to_id] find (in the caller's snapshot, under its state).
Recheck = Callable[[list[int], int, int], set[int]]

# What moves or removes touches: the new state's rows may then not add to the old one's.
_NOT_CARRIED_OVER = (LedgerAction.CONTACT_MERGE, LedgerAction.CONTACT_ERASE)


@dataclass(frozen=True)
class _Progress:
    touch_id: int
    ledger_seq: int
    found: frozenset[int]


@dataclass(frozen=True)
class StateKey:
    """A state of the aggregates as the answers kept for it know it: its id and what it
    was written as, so a database restored or rebuilt under the same ids is not taken
    for it (``reports.per_state`` keys its answers by it too)."""

    pk: int
    refreshed_at: object
    ledger_mark: int | None
    last_touch_id: int
    time_zone: str


_lock = threading.Lock()
_state: StateKey | None = None
_progress: dict[Hashable, _Progress] = {}
# The answers of the state before, for the readers that have not asked since it changed.
_earlier_state: StateKey | None = None
_earlier_progress: dict[Hashable, _Progress] = {}
# Whether anyone was merged or erased between two ledger marks (asked once per process).
_moved_between: dict[tuple[int, int], bool] = {}


def since_state_forget() -> None:
    """Drop every kept answer (the next request of each reads everything)."""
    global _state, _earlier_state
    with _lock:
        _state = None
        _progress.clear()
        _earlier_state = None
        _earlier_progress.clear()
        _moved_between.clear()


def state_key(refresh: PeopleRefresh) -> StateKey:
    return StateKey(
        refresh.pk,
        refresh.refreshed_at,
        refresh.ledger_mark,
        refresh.last_touch_id,
        refresh.time_zone,
    )


# Above any touch id: "every touch after this one".
_TOUCH_ID_ANY = 2**63 - 1


def since_state(
    key: Hashable,
    *,
    refresh: PeopleRefresh | None,
    read: Read,
    recheck: Recheck | None = None,
) -> set[int]:
    """``read``'s answer over every touch after ``refresh``'s, read in parts (see the
    module); without a state, over every touch, read whole. With ``recheck``, the answer
    kept for the state before is carried over when it can be (see the module). Call it
    inside the reader's snapshot (``reports.snapshot.consistent_read``): the ledger head
    and the touches must be read as of one moment."""
    if refresh is None:
        return read(0, _TOUCH_ID_ANY, [])
    state = state_key(refresh)
    # Read once per snapshot: a page's reports each ask.
    head, last_touch_id = snapshot_heads()
    top = max(last_touch_id, refresh.last_touch_id)
    with _lock:
        if _state == state:
            known = _progress.get(key)
            earlier = (_earlier_state, _earlier_progress.get(key))
        else:
            known = None
            earlier = (_state, _progress.get(key))
    if known is None and recheck is not None:
        known = _carried_over(*earlier, state, head, recheck)
    if known is None or known.ledger_seq > head or known.touch_id > top:
        progress = _Progress(top, head, frozenset(read(refresh.last_touch_id, top, [])))
    else:
        late = _touches_named_since(known.ledger_seq, head, refresh.last_touch_id, known.touch_id)
        found = read(known.touch_id, top, late)
        progress = _Progress(top, head, known.found | found)
    _keep(state, key, progress)
    return set(progress.found)


def _carried_over(
    before: StateKey | None,
    kept: _Progress | None,
    state: StateKey,
    head: int,
    recheck: Recheck,
) -> _Progress | None:
    """The answer kept for the state ``before``, as ``state``'s over the same touches, or
    None when it cannot be carried over (see the module)."""
    if (
        before is None
        or kept is None
        or before.ledger_mark is None
        or state.ledger_mark is None
        or before.time_zone != state.time_zone
        or not before.pk < state.pk
        or not before.ledger_mark <= state.ledger_mark
        or not before.last_touch_id <= state.last_touch_id <= kept.touch_id
        or kept.ledger_seq > head
        or _people_moved_between(before.ledger_mark, state.ledger_mark)
    ):
        return None
    found = recheck(sorted(kept.found), state.last_touch_id, kept.touch_id) if kept.found else set()
    return _Progress(kept.touch_id, kept.ledger_seq, frozenset(found))


def _people_moved_between(after_seq: int, up_to_seq: int) -> bool:
    """Whether a ledger entry in (after_seq, up_to_seq] merged or erased anyone (the ledger
    commits in seq order, so the answer for two marks never changes)."""
    marks = (after_seq, up_to_seq)
    with _lock:
        if marks in _moved_between:
            return _moved_between[marks]
    moved = LedgerEntry.objects.filter(
        seq__gt=after_seq, seq__lte=up_to_seq, action__in=_NOT_CARRIED_OVER
    ).exists()
    with _lock:
        _moved_between[marks] = moved
        # A few pairs of states at a time: the rest are long superseded.
        while len(_moved_between) > 16:
            del _moved_between[next(iter(_moved_between))]
    return moved


def _touches_named_since(after_seq: int, head: int, above: int, up_to: int) -> list[int]:
    """Touches with an id in (above, up_to] whose ledger entry is in (after_seq, head]."""
    if head <= after_seq:
        return []
    named = LedgerEntry.objects.filter(
        seq__gt=after_seq, seq__lte=head, action=LedgerAction.TOUCH_RECORD
    ).values_list("subject_id", flat=True)
    return sorted(
        int(subject) for subject in named if subject.isdigit() and above < int(subject) <= up_to
    )


def _keep(state: StateKey, key: Hashable, progress: _Progress) -> None:
    global _state, _earlier_state
    with _lock:
        if _state != state:
            # The answers of the state before stay for the readers yet to carry theirs over.
            _earlier_state = _state
            _earlier_progress.clear()
            _earlier_progress.update(_progress)
            _state = state
            _progress.clear()
        current = _progress.get(key)
        # Keep the answer of the latest snapshot (threads of this process race here).
        if current is None or current.ledger_seq <= progress.ledger_seq:
            _progress[key] = progress
