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
one read gives. A new state starts afresh.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from django.db.models import Max

from contacts.models import Touch
from leadrecord.models import LedgerAction, LedgerEntry

from .models import PeopleRefresh
from .snapshot import snapshot_ledger_head, snapshot_remember

# read(after_id, up_to_id, also_ids): what the touches with an id in (after_id, up_to_id],
# or in also_ids, find (in the caller's snapshot).
Read = Callable[[int, int, list[int]], set[int]]


@dataclass(frozen=True)
class _Progress:
    touch_id: int
    ledger_seq: int
    found: frozenset[int]


_lock = threading.Lock()
_state: tuple[Hashable, ...] | None = None
_progress: dict[Hashable, _Progress] = {}


def since_state_forget() -> None:
    """Drop every kept answer (the next request of each reads everything)."""
    global _state
    with _lock:
        _state = None
        _progress.clear()


def _state_key(refresh: PeopleRefresh) -> tuple[Hashable, ...]:
    return (refresh.pk, refresh.refreshed_at, refresh.ledger_mark, refresh.last_touch_id)


# Above any touch id: "every touch after this one".
_TOUCH_ID_ANY = 2**63 - 1


def since_state(key: Hashable, *, refresh: PeopleRefresh | None, read: Read) -> set[int]:
    """``read``'s answer over every touch after ``refresh``'s, read in parts (see the
    module); without a state, over every touch, read whole. Call it inside the reader's
    snapshot (``reports.snapshot.consistent_read``): the ledger head and the touches must
    be read as of one moment."""
    if refresh is None:
        return read(0, _TOUCH_ID_ANY, [])
    state = _state_key(refresh)
    # Read once per snapshot: a page's reports each ask.
    head = snapshot_ledger_head()
    top = max(
        snapshot_remember("last touch", lambda: Touch.objects.aggregate(top=Max("id"))["top"] or 0),
        refresh.last_touch_id,
    )
    with _lock:
        known = _progress.get(key) if _state == state else None
    if known is None or known.ledger_seq > head or known.touch_id > top:
        progress = _Progress(top, head, frozenset(read(refresh.last_touch_id, top, [])))
    else:
        late = _touches_named_since(known.ledger_seq, head, refresh.last_touch_id, known.touch_id)
        found = read(known.touch_id, top, late)
        progress = _Progress(top, head, known.found | found)
    _keep(state, key, progress)
    return set(progress.found)


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


def _keep(state: tuple[Hashable, ...], key: Hashable, progress: _Progress) -> None:
    global _state
    with _lock:
        if _state != state:
            _state = state
            _progress.clear()
        current = _progress.get(key)
        # Keep the answer of the latest snapshot (threads of this process race here).
        if current is None or current.ledger_seq <= progress.ledger_seq:
            _progress[key] = progress
