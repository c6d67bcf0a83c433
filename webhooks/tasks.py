"""Thin Celery tasks: each calls a service and is safe to run twice.

Delivery runs after every commit that wrote outbox rows (``deliveries_kick_on_commit``)
and on the beat schedule (``webhooks-deliver``: retries fall due between changes). Two
runs at once are harmless: each claims different messages.
"""

from __future__ import annotations

import threading

from celery import shared_task
from django.db import transaction

from leadrecord.dispatch import task_send

from .delivery import deliveries_run


@shared_task(name="webhooks.deliveries_send")
def deliveries_send_task() -> int:
    """Send what is due; returns how many attempts were made."""
    return deliveries_run()


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
    """Have due messages sent soon: a task with a broker, else this process's sender thread."""
    global _again, _thread
    task = deliveries_send_task
    if not task.app.conf.task_always_eager:
        task_send(task)
        return
    from leadrecord.periodic import in_background

    with _kick_lock:
        _again = True
        if _thread is not None and _thread.is_alive():
            return
        _thread = in_background(_in_process_loop, name="webhooks-deliver")


def deliveries_kick_on_commit() -> None:
    transaction.on_commit(deliveries_kick)
