"""Sending Celery tasks after the writing transaction commits, surviving a broker outage.

A task is sent only once the change it follows is committed (the worker must
see it). If the broker cannot be reached even after a few quick retries (Redis
restarting, say), the request that made the change must not fail after the
fact: the send is logged and, where the work must not wait, done in process
instead. Work that may wait (an attribution run) stays queued in the database
and is picked up by the next request or the nightly schedule.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# Quick retries while a broker restarts: about three seconds in all.
PUBLISH_RETRY = {"max_retries": 4, "interval_start": 0.2, "interval_step": 0.4, "interval_max": 1.0}


def task_send(task: Task, *args: Any, inline_if_unreachable: bool = False) -> bool:
    """Send ``task(*args)`` now; returns whether it was sent (or run in process)."""
    try:
        # Nobody waits on these results: not subscribing to them keeps a restarted
        # result store (Redis) from failing the send.
        task.apply_async(args=args, retry=True, retry_policy=PUBLISH_RETRY, ignore_result=True)
        return True
    except (OperationalError, OSError) as error:
        logger.warning("broker unreachable, %s(%s) not sent: %s", task.name, args, error)
        if not inline_if_unreachable:
            return False
    task.apply(args=args, throw=True)
    return True


def task_send_on_commit(task: Task, *args: Any, inline_if_unreachable: bool = False) -> None:
    """``task_send`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(
        lambda: task_send(task, *args, inline_if_unreachable=inline_if_unreachable)
    )


def task_start_on_commit(task: Task, *args: Any) -> None:
    """``task_send_on_commit``, except with no broker: the task then runs in a background
    thread of this process, so the request that asked for it is answered at once (a page
    can show its progress) instead of waiting for it in process."""
    if not task.app.conf.task_always_eager:
        task_send_on_commit(task, *args)
        return
    from .periodic import in_background

    transaction.on_commit(
        lambda: in_background(lambda: task.apply(args=args, throw=True), name=task.name)
    )
