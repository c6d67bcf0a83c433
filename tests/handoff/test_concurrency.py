"""Two reps deciding the same handoff at the same moment, on PostgreSQL: exactly one wins."""

import functools
import threading
from collections.abc import Callable
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.test import APIClient

from contacts.services import consent_record
from handoff import services
from handoff.models import Handoff, HandoffStatus
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role
from tests.factories import UserFactory, contact_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SYSTEM = Actor.system("test")


def _pending_handoff() -> Handoff:
    ruleset = services.ruleset_create(
        name="r", points={"channel:webinar": 10}, mql_threshold=20, sla_hours=24, actor=SYSTEM
    )
    services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    contact = contact_make(organization="acme.example")
    consent_record(
        contact=contact, purpose="sales_contact", granted=True, source="form", actor=SYSTEM
    )
    return services.handoff_create(contact=contact, actor=SYSTEM)


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; each gets its own connection."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = calls[index]()
        except BaseException as error:  # reported by the test, not lost in the thread
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("second", ["accept", "reject"])
def test_two_reps_deciding_at_once_exactly_one_succeeds(second: str) -> None:
    handoff = _pending_handoff()
    reps = [cast(User, UserFactory(role=Role.SALES_REP)) for _ in range(2)]
    clients = []
    for rep in reps:
        client = APIClient()
        client.force_authenticate(rep)
        clients.append(client)
    entries_before = LedgerEntry.objects.count()
    url = f"/api/v1/handoffs/{handoff.pk}/"
    bodies = {"accept": {}, "reject": {"reason": "not_a_fit", "note": "Too small"}}

    def decide(client: APIClient, action: str) -> Any:
        return client.post(url + f"{action}/", bodies[action], format="json")

    responses = _race([lambda: decide(clients[0], "accept"), lambda: decide(clients[1], second)])
    assert not [r for r in responses if isinstance(r, BaseException)], responses
    codes = sorted(response.status_code for response in responses)
    assert codes == [200, 409], [r.content for r in responses]
    loser = next(response for response in responses if response.status_code == 409)
    assert loser.json()["errors"][0]["code"] == "handoff_not_pending"

    handoff.refresh_from_db()
    winner = responses.index(next(r for r in responses if r.status_code == 200))
    expected = HandoffStatus.ACCEPTED if winner == 0 or second == "accept" else "rejected"
    assert handoff.status == expected
    assert handoff.decided_by_id == reps[winner].pk
    if handoff.status == HandoffStatus.ACCEPTED:
        assert handoff.owner_id == reps[winner].pk
    # One decision, one ledger entry: the loser wrote nothing.
    assert LedgerEntry.objects.count() == entries_before + 1
    assert ledger_verify().ok


def test_many_reps_racing_for_one_handoff_leave_one_owner() -> None:
    handoff = _pending_handoff()
    reps = [cast(User, UserFactory(role=Role.SALES_REP)) for _ in range(6)]

    def accept(rep: User) -> Any:
        try:
            return services.handoff_accept(handoff=Handoff.objects.get(pk=handoff.pk), user=rep)
        except Exception as error:  # the refusals are the point of the test
            return error

    results = _race([functools.partial(accept, rep) for rep in reps])
    accepted = [result for result in results if isinstance(result, Handoff)]
    refused = [result for result in results if not isinstance(result, Handoff)]
    assert len(accepted) == 1
    assert all(getattr(error, "code", None) == "handoff_not_pending" for error in refused), refused
    handoff.refresh_from_db()
    assert handoff.owner_id == accepted[0].owner_id
    assert ledger_verify().ok
