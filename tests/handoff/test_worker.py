"""The handoff app's Celery tasks on a real worker: bulk rescoring and SLA expiry."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from contacts.models import Channel, Contact
from contacts.services import consent_record, touch_record
from handoff import services
from handoff.models import Handoff, HandoffStatus
from handoff.tasks import handoffs_expire_task
from leadrecord.ledger import Actor, ledger_verify
from tests.factories import contact_make

from ..workers import celery_worker_process

SYSTEM = Actor.system("test")


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_activating_a_ruleset_rescores_everyone_on_a_real_worker() -> None:
    first = services.ruleset_create(
        name="v1", points={"channel:webinar": 5}, mql_threshold=50, sla_hours=24, actor=SYSTEM
    )
    webinar = Channel.objects.get(key="webinar")
    people = [contact_make() for _ in range(30)]
    with celery_worker_process():
        services.ruleset_activate(ruleset=first, actor=SYSTEM)
        for person in people:
            touch_record(contact=person, channel=webinar, actor=SYSTEM)
        assert Contact.objects.filter(score=5).count() == 30

        second = services.ruleset_create(
            name="v2",
            points={"channel:webinar": 60},
            mql_threshold=50,
            sla_hours=24,
            actor=SYSTEM,
        )
        services.ruleset_activate(ruleset=second, actor=SYSTEM)  # queues the bulk rescore
        deadline = time.monotonic() + 60
        while Contact.objects.filter(qualified=True).count() < 30:
            assert time.monotonic() < deadline, "the worker did not rescore within 60 s"
            time.sleep(0.2)
    assert set(Contact.objects.values_list("score", flat=True)) == {60}
    assert ledger_verify().ok


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_sla_task_expires_overdue_handoffs_once() -> None:
    services.ruleset_activate(
        ruleset=services.ruleset_create(
            name="v1", points={}, mql_threshold=1, sla_hours=1, actor=SYSTEM
        ),
        actor=SYSTEM,
    )
    overdue, fresh = contact_make(), contact_make()
    for person in (overdue, fresh):
        consent_record(
            contact=person, purpose="sales_contact", granted=True, source="form", actor=SYSTEM
        )
    services.handoff_create(
        contact=overdue, actor=SYSTEM, occurred_at=timezone.now() - timedelta(hours=2)
    )
    services.handoff_create(contact=fresh, actor=SYSTEM)
    with celery_worker_process():
        assert handoffs_expire_task.delay().get(timeout=60) == 1
        assert handoffs_expire_task.delay().get(timeout=60) == 0
    statuses = dict(Handoff.objects.values_list("contact_id", "status"))
    assert statuses == {overdue.pk: HandoffStatus.EXPIRED, fresh.pk: HandoffStatus.PENDING}
    assert ledger_verify().ok
