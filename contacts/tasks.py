"""Thin Celery tasks: each calls a service and is safe to run twice."""

from celery import shared_task

from . import ingest


@shared_task(name="contacts.idempotency_records_expire")
def idempotency_records_expire_task() -> int:
    """Forget Idempotency-Keys past their retention (periodic; idempotent by nature)."""
    return ingest.idempotency_records_expire()
