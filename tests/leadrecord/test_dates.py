"""The one accepted range of dates and times (leadrecord.dates), at its edges."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from leadrecord.dates import (
    EARLIEST_DAY,
    LATEST_DAY,
    day_in_range,
    moment_in_range,
)

PLUS_ONE = timezone(timedelta(hours=1))
MINUS_FOURTEEN = timezone(timedelta(hours=-14))


def test_the_range_is_1900_to_2200():
    assert (date(1900, 1, 1), date(2200, 12, 31)) == (EARLIEST_DAY, LATEST_DAY)


@pytest.mark.parametrize(
    ("day", "inside"),
    [
        (date(1900, 1, 1), True),
        (date(2200, 12, 31), True),
        (date(1899, 12, 31), False),
        (date(2201, 1, 1), False),
        (date(1, 1, 1), False),
        (date(9999, 12, 31), False),
    ],
)
def test_days(day, inside):
    assert day_in_range(day) is inside


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (datetime(1900, 1, 1, tzinfo=UTC), True),
        (datetime(2200, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), True),
        (datetime(1899, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), False),
        (datetime(2201, 1, 1, tzinfo=UTC), False),
        # The offset counts: these are 1899-12-31T23:00Z and 2201-01-01T13:59Z.
        (datetime(1900, 1, 1, tzinfo=PLUS_ONE), False),
        (datetime(2200, 12, 31, 23, 59, tzinfo=MINUS_FOURTEEN), False),
        # Times with no UTC form in Python: compared without converting, no OverflowError.
        (datetime(1, 1, 1, tzinfo=PLUS_ONE), False),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_FOURTEEN), False),
    ],
)
def test_moments_are_compared_with_their_offset_applied(moment, inside):
    assert moment_in_range(moment) is inside
