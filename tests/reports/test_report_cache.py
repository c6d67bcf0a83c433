"""Reports cached per state of the record: served from the cache until the ledger moves."""

import socket
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact
from reports import metrics
from reports.aggregates import people_aggregates_update
from reports.report_cache import computed_once_per_page, ledger_head
from tests.factories import contact_make

from .conftest import DAY, touch, won_deal

# The record is written relative to now and read over the year ending today: both are
# this fixed moment (its clock running), so a run across midnight reads what it wrote.
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TODAY = date(2026, 6, 15)
YEAR = (TODAY - timedelta(days=364), TODAY)

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(NOW, tick=True)]


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cache.clear()


def _queries(function: Callable[..., object], *args: object) -> tuple[object, int]:
    with CaptureQueriesContext(connection) as captured:
        result = function(*args)
    return result, len(captured.captured_queries)


def test_a_second_reading_of_the_same_record_is_served_from_the_cache(
    record: dict[str, Contact],
) -> None:
    first, computed = _queries(metrics.contribution, *YEAR)
    again, cached = _queries(metrics.contribution, *YEAR)

    assert again == first
    assert computed > 5
    assert cached == 1  # the ledger's head, nothing else


def test_any_change_on_the_record_is_seen_by_the_next_reading(
    record: dict[str, Contact],
) -> None:
    before = metrics.contribution(*YEAR)
    head = ledger_head()

    newcomer = contact_make(organization="globex.example")
    touch(newcomer, "web", 2 * DAY)
    won_deal([newcomer], amount="500", opened=2 * DAY, won=DAY, name="Globex")

    assert ledger_head() != head
    after = metrics.contribution(*YEAR)
    assert after.people.customers == before.people.customers + 1
    assert after.revenue.total == before.revenue.total + 500


def test_arguments_and_the_reporting_zone_are_part_of_the_key(
    record: dict[str, Contact], settings
) -> None:
    metrics.contribution(*YEAR)

    _, other_range = _queries(metrics.contribution, TODAY - timedelta(days=15), TODAY)
    settings.TIME_ZONE = "Pacific/Kiritimati"
    _, other_zone = _queries(metrics.contribution, *YEAR)

    assert other_range > 1
    assert other_zone > 1


def test_two_records_that_reach_the_same_seq_do_not_share_an_entry(
    record: dict[str, Contact],
) -> None:
    """A rolled-back (or restored) record may reach the same seq with other contents."""
    quiet = contact_make(organization="globex.example")
    with transaction.atomic():
        buyers = [contact_make(organization="globex.example") for _ in range(2)]
        won_deal(buyers, amount="700", opened=2 * DAY, won=DAY, name="Rolled back")
        for _ in range(3):
            touch(buyers[0], "web", DAY)
        rolled_back_head = ledger_head()
        assert metrics.people(*YEAR).customers == 4
        transaction.set_rollback(True)

    won_deal([quiet], amount="900", opened=2 * DAY, won=DAY, name="Kept")
    while int(ledger_head().split(":")[0]) < int(rolled_back_head.split(":")[0]):
        touch(quiet, "web", DAY)

    assert ledger_head().split(":")[0] == rolled_back_head.split(":")[0]
    assert ledger_head() != rolled_back_head
    assert metrics.people(*YEAR).customers == 3


def test_with_the_cache_off_every_reading_is_computed(record: dict[str, Contact], settings) -> None:
    settings.REPORT_CACHE_SECONDS = 0
    metrics.funnel(*YEAR)
    _, queries = _queries(metrics.funnel, *YEAR)
    assert queries > 5


def test_an_unreachable_cache_does_not_refuse_a_report(
    record: dict[str, Contact], settings
) -> None:
    """A cache server that is down only costs the computation."""
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }
    first = metrics.people(*YEAR)
    _, queries = _queries(metrics.people, *YEAR)

    assert first.customers == 2  # Ada and Bo
    assert queries > 1  # computed again, nothing kept


def test_within_a_page_a_report_asked_for_twice_is_computed_once(
    record: dict[str, Contact], settings
) -> None:
    settings.REPORT_CACHE_SECONDS = 0
    with computed_once_per_page():
        first, computed = _queries(metrics.people, *YEAR)
        again, repeated = _queries(metrics.people, *YEAR)
        _, other_days = _queries(metrics.people, YEAR[0], TODAY - DAY)
    assert again == first
    assert computed > 3 and repeated == 0 and other_days > 3
    # Outside a page, with the cache off, every reading is computed again.
    assert _queries(metrics.people, *YEAR)[1] == computed


def test_the_manager_page_computes_what_its_sections_share_once(
    record: dict[str, Contact], settings, client, users
) -> None:
    settings.REPORT_CACHE_SECONDS = 0
    people_aggregates_update()
    client.force_login(users["manager"])
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/reports/manager/", {"from": YEAR[0], "to": YEAR[1]})
    assert response.status_code == 200
    # Contribution and the funnel both show the people counts: one count of the
    # qualifications of the range, not two.
    # (The people counted by qualification, asked with the stages' other counts.)
    qualified = [
        query
        for query in captured.captured_queries
        if 'SELECT DISTINCT "handoff_qualification"."contact_id"' in query["sql"]
        and "COUNT(" in query["sql"].upper()
    ]
    assert len(qualified) == 1
    # Contribution, reconciliation and lifetime each need the money days changed since the
    # aggregates' state: the ledger is walked for them once.
    walks = [
        query
        for query in captured.captured_queries
        if "leadrecord_ledgerentry" in query["sql"] and "deal.override_source" in query["sql"]
    ]
    assert len(walks) == 1
