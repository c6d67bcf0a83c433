"""Thin Celery tasks: each calls a service and is safe to run twice."""

from celery import shared_task

from . import touch_import


@shared_task(name="contacts.touch_imports_forget_abandoned")
def touch_imports_forget_abandoned_task() -> int:
    """Delete uploaded files never imported within a day (they hold people's emails)."""
    return touch_import.touch_imports_forget_abandoned()
