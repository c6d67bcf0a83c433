"""Thin Celery tasks: each calls a service and is safe to run twice.

Their names are those they had in the contacts app, so that a queued import and
the periodic schedule keep finding them.
"""

import logging

from celery import shared_task

from contacts.touch_import import TOUCH_IMPORT_RUN_TASK

from . import ingest, touch_import

logger = logging.getLogger(__name__)


@shared_task(name="contacts.idempotency_records_expire")
def idempotency_records_expire_task() -> int:
    """Forget Idempotency-Keys past their retention (periodic; idempotent by nature)."""
    return ingest.idempotency_records_expire()


@shared_task(name=TOUCH_IMPORT_RUN_TASK)
def touch_import_run_task(job_id: int) -> str | None:
    """Import an uploaded CSV file of touches; a finished job is left alone, a running one
    resumes after its last written chunk."""
    try:
        job = touch_import.touch_import_run(job_id=job_id)
    except Exception:
        # Not retried: the same file would fail the same way. The job says so,
        # and chunks already written stay (each one is complete).
        logger.exception("import job %s stopped on an unexpected error", job_id)
        touch_import.touch_import_fail(
            job_id=job_id,
            message="The import stopped on an unexpected error; rows imported before it stay.",
        )
        return "failed"
    return job.status if job is not None else None
