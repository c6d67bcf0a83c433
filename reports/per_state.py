"""What a report reads from a state of the aggregates or from a complete run, once per
process.

A state of the aggregates (``PeopleRefresh``) is written in one transaction with its
rows, and they are not changed afterwards: the next update writes a new state (and
deletes the rows of the one before). A complete run's daily credit sums
(``AttributionDaily``) are written in the transaction that completes it and go only with
the run. So whatever a report reads from those tables alone, for the same arguments, is
the same for every reader whose snapshot holds that state or run, and every request
read it again: the first-touch histogram, the people counted per day, the money per day,
the credits per channel and model (a handful of queries per page, a few milliseconds of
the database's time each, more while events stream in on the same cores).

Each process keeps those answers by the state's or run's identity (its id and the
moments it was written, ``reports.since_state.StateKey``, so a database
restored or rebuilt under the same ids is not mistaken for it), the latest few hundred;
a newer state's first answer drops the older states' (a reader still on one reads it
again). Only counts and sums are kept, never a person's data. What depends on the record
since the state (the live parts) is never read through here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from .models import AttributionRun, PeopleRefresh
from .since_state import StateKey, state_key

Value = TypeVar("Value")

# Answers kept per process: a page asks about a dozen, for each range and reader asked.
KEPT_ANSWERS = 512

_lock = threading.Lock()
_kept: OrderedDict[Hashable, object] = OrderedDict()
# The newest state an answer was kept for (its id).
_newest_state = 0


def per_state_forget() -> None:
    """Drop every kept answer."""
    global _newest_state
    with _lock:
        _kept.clear()
        _newest_state = 0


def state_read(state: PeopleRefresh, key: Hashable, read: Callable[[], Value]) -> Value:
    """``read()`` (which reads only the aggregates' tables, in the caller's snapshot, where
    ``state`` is the latest), once per process for ``state`` and ``key``. The answer is
    shared: the caller must not change it."""
    _older_states_forget(state.pk)
    return _kept_or_read((state_key(state), key), read)


def _older_states_forget(state_id: int) -> None:
    """On the first answer for a newer state, drop the answers of the states before it:
    superseded, they would only wait for their turn to go."""
    global _newest_state
    with _lock:
        if state_id <= _newest_state:
            return
        _newest_state = state_id
        for kept_key in [kept_key for kept_key in _kept if _of_older_state(kept_key, state_id)]:
            del _kept[kept_key]


def _of_older_state(kept_key: Hashable, state_id: int) -> bool:
    identity = kept_key[0] if isinstance(kept_key, tuple) else None
    return isinstance(identity, StateKey) and identity.pk < state_id


def run_read(
    run: AttributionRun,
    key: Hashable,
    read: Callable[[], Value],
    *,
    final: Callable[[Value], bool] | None = None,
) -> Value:
    """``read()`` (which reads only the complete ``run``'s own rows), once per process for
    ``run`` and ``key``; with ``final``, kept only once ``final(answer)`` says it can no
    longer change (rows noted for the run later, once). The answer is shared: the caller
    must not change it."""
    identity = ("run", run.pk, run.created_at, run.finished_at, run.ledger_mark)
    return _kept_or_read((identity, key), read, final)


def _kept_or_read(
    key: Hashable, read: Callable[[], Value], final: Callable[[Value], bool] | None = None
) -> Value:
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]  # type: ignore[return-value]
    # Read outside the lock: two threads may both read once, and keep the same answer.
    value = read()
    if final is not None and not final(value):
        return value
    with _lock:
        _kept[key] = value
        _kept.move_to_end(key)
        while len(_kept) > KEPT_ANSWERS:
            _kept.popitem(last=False)
    return value
