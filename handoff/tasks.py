"""Thin Celery tasks: each calls a service and is safe to run twice."""

from celery import shared_task

from . import services


@shared_task(name="handoff.contacts_rescore_all")
def contacts_rescore_all_task(ruleset_id: int) -> int:
    """Rescore everyone under a newly activated ruleset (a no-op once it is not active)."""
    return services.contacts_rescore_all(ruleset_id=ruleset_id)


@shared_task(name="handoff.handoffs_expire")
def handoffs_expire_task() -> int:
    """Expire pending handoffs past their SLA (periodic; finds nothing the second time)."""
    return services.handoffs_expire_due()
