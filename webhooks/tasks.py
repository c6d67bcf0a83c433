"""Thin Celery tasks: each calls a service and is safe to run twice.

Delivery runs soon after every commit that wrote outbox rows (``deliveries_kick_on_commit``)
and on the beat schedule (``webhooks-deliver``: retries fall due between changes, and
it picks up whatever a kick missed). Two runs at once are harmless: each claims
different messages.
"""

from __future__ import annotations

import os
import threading
import time

from celery import shared_task
from django.db import transaction

from leadrecord.dispatch import task_send

from .delivery import deliveries_run

# A process asks the broker for a delivery run at most once per this many seconds. A
# send on every committing request cost each one a broker round trip inside the request,
# which bench/webhooks.py's single requests paid in full; one run sends everything due
# when it starts and keeps going until nothing is left, so one kick covers every commit
# before it. A commit inside the interval is followed by a kick at its end, so a message
# waits at most this long for its run to be asked for (beat's check is the safety net for
# a process that exits meanwhile).
KICK_INTERVAL_SECONDS = 0.25


@shared_task(name="webhooks.deliveries_send")
def deliveries_send_task() -> int:
    """Send what is due; returns how many attempts were made."""
    return deliveries_run()


class Kicker:
    """Asks for delivery runs from a thread of its own, at most once per interval.

    ``request`` only sets a flag (no request waits for the broker); the thread sends one
    task for every flag it finds, then rests for the interval before looking again.
    ``sends`` counts the tasks it asked for (what the coalescing saved is visible).
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._wanted = False
        self._thread: threading.Thread | None = None
        self.sends = 0

    def request(self) -> None:
        with self._condition:
            self._wanted = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="webhooks-kick", daemon=True
                )
                self._thread.start()
            else:
                self._condition.notify()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._wanted:
                    self._condition.wait()
                self._wanted = False
            self.sends += 1
            task_send(deliveries_send_task)
            time.sleep(KICK_INTERVAL_SECONDS)

    def forked(self) -> None:
        """A forked child (a gunicorn worker) has none of its parent's threads, and its
        copy of their lock may be held."""
        self._condition = threading.Condition()
        self._wanted = False
        self._thread = None


kicker = Kicker()
os.register_at_fork(after_in_child=kicker.forked)


# Without a broker one background thread per process sends; a kick while it runs asks
# it for one more round instead of starting another.
_kick_lock = threading.Lock()
_again = False
_thread: threading.Thread | None = None


def _in_process_loop() -> None:
    global _again, _thread
    while True:
        with _kick_lock:
            if not _again:
                _thread = None
                return
            _again = False
        deliveries_run()


def deliveries_kick() -> None:
    """Have due messages sent soon: a task with a broker (asked for by this process's
    kicker), else this process's sender thread."""
    global _again, _thread
    task = deliveries_send_task
    if not task.app.conf.task_always_eager:
        kicker.request()
        return
    from leadrecord.periodic import in_background

    with _kick_lock:
        _again = True
        if _thread is not None and _thread.is_alive():
            return
        _thread = in_background(_in_process_loop, name="webhooks-deliver")


def deliveries_kick_on_commit() -> None:
    transaction.on_commit(deliveries_kick)
