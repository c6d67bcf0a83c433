"""Visits, with consent first.

A browser without a visitor id (no analytics consent) adds one to a daily count
per page and campaign, and nothing else is stored: no cookie is set, and no
address or hash is kept. A browser with a visitor id (set when its person gave
analytics consent on a form) has each page view kept; when that person sends a
form, their kept visits become visit touches dated when they happened (on the
``web`` channel, or the channel of the campaign a visit's ``utm_campaign``
names), so the first and the last campaign both stay on the record.
"""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import parse_qsl, urlsplit

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from leadrecord.errors import InvalidInput

from .models import (
    CLICK_ID_KEYS,
    CLICK_ID_MAX_LENGTH,
    URL_MAX_LENGTH,
    UTM_KEYS,
    VISIT_PATH_MAX_LENGTH,
    DailyVisitCount,
    Visit,
)
from .selectors import analytics_granted
from .services import visitor_for_token

UTM_VALUE_MAX_LENGTH = 200


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def visit_record(
    *,
    page_url: str,
    referrer: str = "",
    visitor_token: str | None = None,
    occurred_at: datetime | None = None,
) -> bool:
    """Count or keep one page view; True when it was kept under a visitor id."""
    page_url = page_url.strip()
    try:
        parts = urlsplit(page_url)
    except ValueError:
        raise InvalidInput("invalid", "Not a page address.", attr="u") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("invalid", "Not a page address.", attr="u")
    when = occurred_at or timezone.now()
    query = _query(page_url)
    visitor = visitor_for_token(visitor_token)
    if visitor is not None and (
        visitor.contact_id is None or analytics_granted(visitor.contact_id)
    ):
        Visit.objects.create(
            visitor=visitor,
            occurred_at=when,
            page_url=page_url[:URL_MAX_LENGTH],
            referrer=referrer.strip()[:URL_MAX_LENGTH],
            utm={k: query[k][:UTM_VALUE_MAX_LENGTH] for k in UTM_KEYS if query.get(k)},
            click_ids={k: query[k][:CLICK_ID_MAX_LENGTH] for k in CLICK_ID_KEYS if query.get(k)},
        )
        return True
    _count(
        day=timezone.localdate(when),
        path=(parts.path or "/")[:VISIT_PATH_MAX_LENGTH],
        utm_campaign=query.get("utm_campaign", "")[:UTM_VALUE_MAX_LENGTH],
    )
    return False


def _count(*, day: date, path: str, utm_campaign: str) -> None:
    counts = DailyVisitCount.objects.filter(day=day, path=path, utm_campaign=utm_campaign)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A count is not worth waiting for the disk: the commit returns before its
            # WAL is flushed, so a crash can lose the last moment's views, never the
            # record's consistency. bench/forms.py measures views against health/.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        if counts.update(views=F("views") + 1):
            return
        try:
            with transaction.atomic():
                DailyVisitCount.objects.create(
                    day=day, path=path, utm_campaign=utm_campaign, views=1
                )
        except IntegrityError:  # another request counted the day's first view meanwhile
            counts.update(views=F("views") + 1)
