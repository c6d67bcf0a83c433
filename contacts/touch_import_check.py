"""Checking the rows of a CSV file of touches: each row becomes an event of type ``touch``
for ``events.ingest.events_ingest``, or a list of errors naming its row and column."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models.functions import Lower
from django.utils import timezone

from leadrecord.api_fields import FUTURE_TOLERANCE, MAX_ID
from leadrecord.dates import MOMENT_OUT_OF_RANGE, moment_in_range
from leadrecord.errors import DomainError

from . import rules
from .models import (
    EMAIL_MAX_LENGTH,
    EXTERNAL_ID_MAX_LENGTH,
    SOURCE_SYSTEM_MAX_LENGTH,
    Campaign,
    Channel,
    TouchKind,
)
from .touch_import_csv import CsvRow

DEFAULT_SOURCE_SYSTEM = "csv-import"
# What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list;
# tabs and carriage returns are stripped with the other surrounding blanks).
FORMULA_PREFIXES = ("=", "+", "-", "@")
OCCURRED_AT_MAX_LENGTH = 64
TOUCH_KINDS = tuple(str(value) for value in TouchKind.values)
# What erasure leaves in the email cell of an erased person's row in a file
# being imported (the row keeps its place, so a resumed run counts the same).
ERASED_ROW_MARK = "(erased)"
ERASED_ROW_MESSAGE = "This row was about a person who has since been erased; it is not imported."


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class CheckedRow:
    number: int
    event: dict[str, Any] | None  # the event for events_ingest; None when the row has errors
    errors: list[RowError] = field(default_factory=list)


@dataclass
class _Lookups:
    channels: dict[str, Channel]
    campaigns_by_id: dict[int, Campaign]
    campaigns_by_name: dict[str, Campaign]


def _lookups(rows: Sequence[CsvRow]) -> _Lookups:
    references = {row.cells.get("campaign", "") for row in rows} - {""}
    ids = {int(text) for text in references if text.isdigit() and 0 < int(text) <= MAX_ID}
    names = {text.lower() for text in references if not text.isdigit()}
    campaigns = Campaign.objects.select_related("channel").annotate(lower_name=Lower("name"))
    return _Lookups(
        channels={channel.key: channel for channel in Channel.objects.filter(active=True)},
        campaigns_by_id={c.pk: c for c in campaigns.filter(pk__in=ids)} if ids else {},
        campaigns_by_name=(
            {c.lower_name: c for c in campaigns.filter(lower_name__in=names)} if names else {}
        ),
    )


class _CellRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _cell(row: CsvRow, name: str, *, max_length: int, required: bool) -> str:
    value = row.cells.get(name, "")
    if not value:
        if required:
            raise _CellRefused("This field is required.")
        return ""
    if value.startswith(FORMULA_PREFIXES):
        raise _CellRefused(
            f"Starts with {value[0]!r}, which a spreadsheet runs as a formula: "
            "such cells are not accepted."
        )
    if len(value) > max_length:
        raise _CellRefused(f"Give at most {max_length} characters (this cell has {len(value)}).")
    return value


def _email(row: CsvRow) -> str:
    email = _cell(row, "email", max_length=EMAIL_MAX_LENGTH, required=True)
    if not rules.email_valid(email):
        raise _CellRefused(rules.EMAIL_INVALID)
    return email


def _channel(row: CsvRow, lookups: _Lookups) -> Channel:
    text = _cell(row, "channel", max_length=100, required=True)
    words = _words(text)
    key = CHANNEL_ALIASES.get(words, words.replace(" ", "_"))
    channel = lookups.channels.get(text) or lookups.channels.get(key)
    if channel is None:
        known = ", ".join(sorted(lookups.channels))
        raise _CellRefused(f"No active channel has this key; the channels are {known}.")
    return channel


def _words(text: str) -> str:
    """A value as compared with keys and labels: lower-case, with ``_`` and ``-`` as spaces."""
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


# A kind by its key or its label, in any case ("Email clicked" = "email_click"), and the
# activity types of HubSpot and Salesforce exports.
KIND_BY_WORDS: dict[str, str] = {
    **{_words(label): str(key) for key, label in TouchKind.choices},
    **{_words(str(key)): str(key) for key in TouchKind.values},
    "email": TouchKind.EMAIL_OPEN,
    "email open": TouchKind.EMAIL_OPEN,
    "email click": TouchKind.EMAIL_CLICK,
    "form submission": TouchKind.FORM,
    "page view": TouchKind.VISIT,
    "web visit": TouchKind.VISIT,
    "webinar": TouchKind.WEBINAR_ATTENDED,
    "event": TouchKind.EVENT_ATTENDED,
    "phone call": TouchKind.CALL,
    "task": TouchKind.OTHER,
}
# Channels by what exports call them (HubSpot's Original Source, Salesforce's Lead Source).
CHANNEL_ALIASES: dict[str, str] = {
    "email marketing": "email",
    "direct traffic": "web",
    "website": "web",
    "paid search": "paid_search",
    "paid social": "paid_social",
    "social media": "organic_social",
    "organic social": "organic_social",
    "referrals": "referral",
    "partner referral": "partner",
    "trade show": "event",
    "phone inquiry": "sales_call",
}


def _kind(row: CsvRow) -> str:
    kind = _cell(row, "kind", max_length=40, required=True)
    found = KIND_BY_WORDS.get(_words(kind))
    if found is None:
        raise _CellRefused(
            "Choose one of "
            + ", ".join(f"{label} ({key})" for key, label in TouchKind.choices)
            + "."
        )
    return found


def _campaign(row: CsvRow, lookups: _Lookups, channel: Channel | None) -> Campaign | None:
    text = _cell(row, "campaign", max_length=200, required=False)
    if not text:
        return None
    if text.isdigit():
        campaign = lookups.campaigns_by_id.get(int(text)) if int(text) <= MAX_ID else None
    else:
        campaign = lookups.campaigns_by_name.get(text.lower())
    if campaign is None:
        raise _CellRefused("No campaign has this id or name.")
    if channel is not None:
        try:
            rules.campaign_on_channel_check(campaign=campaign, channel=channel)
        except DomainError as refusal:
            raise _CellRefused(refusal.detail) from refusal
    return campaign


# Times as exports write them besides ISO 8601 (Salesforce's US dates).
TIME_FORMATS = ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y")


def _time_parse(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in TIME_FORMATS:
        try:
            return datetime.strptime(text, pattern)  # noqa: DTZ007 (the zone is applied next)
        except ValueError:
            continue
    raise _CellRefused(
        "Give an ISO 8601 time, e.g. 2026-05-01T09:30:00+02:00 (or 2026-05-01 09:30 with "
        "the file's time zone chosen)."
    )


def _occurred_at(row: CsvRow, now: datetime, zone: ZoneInfo | None) -> datetime:
    text = _cell(row, "occurred_at", max_length=OCCURRED_AT_MAX_LENGTH, required=True)
    moment = _time_parse(text)
    if moment.tzinfo is None:
        if zone is None:
            raise _CellRefused(
                "Give the time with a UTC offset, e.g. 2026-05-01T09:30:00+02:00, or choose "
                "the time zone of the file's times."
            )
        moment = moment.replace(tzinfo=zone)
    if not moment_in_range(moment):
        raise _CellRefused(MOMENT_OUT_OF_RANGE)
    if moment > now + FUTURE_TOLERANCE:
        raise _CellRefused("This time is in the future.")
    return moment


def generated_external_id(sha256: str, row_number: int) -> str:
    """Stable for a file and a row: the same file uploaded again names the same touches."""
    return f"sha256:{sha256}:row:{row_number}"


def rows_check(
    rows: Sequence[CsvRow],
    *,
    sha256: str,
    now: datetime | None = None,
    time_zone: str = "",
) -> list[CheckedRow]:
    """Each row's event for ``events_ingest``, or its errors (row, field, message).

    ``time_zone`` (an IANA name) is the zone of times written without an offset; without
    one such times are refused.
    """
    now = now or timezone.now()
    lookups = _lookups(rows)
    zone = ZoneInfo(time_zone) if time_zone else None
    return [_row_check(row, lookups, sha256, now, zone) for row in rows]


def _take(errors: list[RowError], row: CsvRow, name: str, read: Callable[[], Any]) -> Any:
    """The cell's value as ``read`` makes it, or None with the refusal noted in ``errors``."""
    try:
        return read()
    except _CellRefused as refusal:
        errors.append(RowError(row.number, name, refusal.message))
        return None


def _row_check(
    row: CsvRow, lookups: _Lookups, sha256: str, now: datetime, zone: ZoneInfo | None
) -> CheckedRow:
    if row.cells.get("email") == ERASED_ROW_MARK:
        return CheckedRow(row.number, None, [RowError(row.number, "email", ERASED_ROW_MESSAGE)])
    errors: list[RowError] = []
    email = _take(errors, row, "email", lambda: _email(row))
    channel = _take(errors, row, "channel", lambda: _channel(row, lookups))
    campaign = _take(errors, row, "campaign", lambda: _campaign(row, lookups, channel))
    kind = _take(errors, row, "kind", lambda: _kind(row))
    occurred_at = _take(errors, row, "occurred_at", lambda: _occurred_at(row, now, zone))
    external_id = _take(
        errors,
        row,
        "external_id",
        lambda: _cell(row, "external_id", max_length=EXTERNAL_ID_MAX_LENGTH, required=False),
    )
    source_system = _take(
        errors,
        row,
        "source_system",
        lambda: _cell(row, "source_system", max_length=SOURCE_SYSTEM_MAX_LENGTH, required=False),
    )
    if row.extra_cells:
        errors.append(
            RowError(row.number, "row", "This row has more cells than the header has columns.")
        )
    if errors:
        return CheckedRow(row.number, None, errors)
    event: dict[str, Any] = {
        "type": "touch",
        "source_system": source_system or DEFAULT_SOURCE_SYSTEM,
        "external_id": external_id or generated_external_id(sha256, row.number),
        "occurred_at": occurred_at.isoformat(),
        "contact": {"email": email},
        "channel": channel.key,
        "kind": kind,
    }
    if campaign is not None:
        event["campaign"] = campaign.pk
    return CheckedRow(row.number, event)


def errors_of(checked: Iterable[CheckedRow]) -> list[RowError]:
    return [error for row in checked for error in row.errors]
