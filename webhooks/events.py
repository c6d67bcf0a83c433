"""Which ledger entries are which webhook events, and each event's thin data per audience.

One constructor per event type (``_DATA``): the ids and the fields an endpoint's
audience may see, read from the entry itself (its ``after`` holds ids and choices;
personal values there are sealed and never copied) and, for the two things an entry
does not say, from the rows it names: a disclosure's value and a handoff's say-so
audience. A ``links.self`` names the API resource that holds the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from contacts.models import Audience, Disclosure
from contacts.selectors import disclosures_visible_to
from handoff.models import Handoff
from leadrecord.ledger import WrittenEntry
from leadrecord.models import LedgerAction

from .models import EventType

# The ledger actions each event type comes from.
ACTIONS_OF_EVENT: dict[str, str] = {
    EventType.CONTACT_CREATED: LedgerAction.CONTACT_CREATE,
    EventType.CONTACT_MERGED: LedgerAction.CONTACT_MERGE,
    EventType.CONTACT_ERASED: LedgerAction.CONTACT_ERASE,
    EventType.CONSENT_GRANTED: LedgerAction.CONSENT_RECORD,
    EventType.CONSENT_WITHDRAWN: LedgerAction.CONSENT_RECORD,
    EventType.DISCLOSURE_RECORDED: LedgerAction.DISCLOSURE_RECORD,
    EventType.DISCLOSURE_WITHDRAWN: LedgerAction.DISCLOSURE_WITHDRAW,
    EventType.TOUCH_RECORDED: LedgerAction.TOUCH_RECORD,
    EventType.HANDOFF_CREATED: LedgerAction.HANDOFF_CREATE,
    EventType.HANDOFF_ACCEPTED: LedgerAction.HANDOFF_ACCEPT,
    EventType.HANDOFF_REJECTED: LedgerAction.HANDOFF_REJECT,
    EventType.HANDOFF_EXPIRED: LedgerAction.HANDOFF_EXPIRE,
    EventType.DEAL_CREATED: LedgerAction.DEAL_CREATE,
    EventType.SALE_RECORDED: LedgerAction.SALE_RECORD,
    EventType.DEAL_SOURCE_OVERRIDDEN: LedgerAction.DEAL_OVERRIDE_SOURCE,
    EventType.RULESET_ACTIVATED: LedgerAction.RULESET_ACTIVATE,
    EventType.ATTRIBUTION_RUN_COMPLETED: LedgerAction.ATTRIBUTION_RUN,
}

_SIMPLE_EVENT_OF_ACTION = {
    action: event
    for event, action in ACTIONS_OF_EVENT.items()
    if action != LedgerAction.CONSENT_RECORD
}


def event_type_of(entry: WrittenEntry) -> str | None:
    """The event an entry stands for, or None (a merge writes one entry per person: the
    kept person's is the event)."""
    action = entry.action
    if action == LedgerAction.CONSENT_RECORD:
        granted = (entry.after or {}).get("granted")
        return EventType.CONSENT_GRANTED if granted else EventType.CONSENT_WITHDRAWN
    if action == LedgerAction.CONTACT_MERGE and str(entry.contact_id) != entry.subject_id:
        return None
    return _SIMPLE_EVENT_OF_ACTION.get(action)


def audiences_seen(audience: str) -> frozenset[str]:
    """The disclosure audiences an endpoint acting for ``audience`` may see: its own and
    what the person shared with everyone; one acting for ``all`` sees only the latter."""
    if audience == Audience.ALL:
        return frozenset({Audience.ALL})
    return frozenset({audience, Audience.ALL})


def handoff_known(endpoint_audience: str, say_so_audience: str) -> bool:
    """Whether an endpoint may know of a handoff: sales (its addressee) knows each one;
    others only those whose say-so they may see (``handoff.selectors``' rule)."""
    if endpoint_audience == Audience.SALES:
        return True
    return say_so_audience in audiences_seen(endpoint_audience)


@dataclass
class Facts:
    """What the entries do not say, read once for a batch."""

    disclosures: dict[int, tuple[str, str]]  # id: (audience, value) of the visible ones
    handoff_audiences: dict[int, str]  # handoff id: say-so audience

    @classmethod
    def read(cls, entries: Iterable[tuple[WrittenEntry, str]]) -> Facts:
        disclosure_ids: set[int] = set()
        handoff_ids: set[int] = set()
        for entry, event_type in entries:
            if event_type == EventType.DISCLOSURE_RECORDED:
                disclosure_ids.add(int(entry.subject_id))
            elif entry.subject_type == "handoff":
                handoff_ids.add(int(entry.subject_id))
        disclosures: dict[int, tuple[str, str]] = {}
        if disclosure_ids:
            rows = disclosures_visible_to(
                None,
                Disclosure.objects.filter(pk__in=disclosure_ids),
                audiences=frozenset(Audience.values),
            ).values_list("pk", "audience", "value")
            disclosures = {pk: (audience, value) for pk, audience, value in rows}
        handoffs: dict[int, str] = {}
        if handoff_ids:
            handoffs = dict(
                Handoff.objects.filter(pk__in=handoff_ids).values_list("pk", "say_so_audience")
            )
        return cls(disclosures, handoffs)


@dataclass(frozen=True)
class EventData:
    data: dict[str, Any]  # ids and choices
    personal: dict[str, Any] | None  # personal values (erasure empties them)


def _ids(entry: WrittenEntry, name: str) -> dict[str, Any]:
    return {name: int(entry.subject_id)}


def _contact(entry: WrittenEntry) -> dict[str, Any]:
    return {"contact": entry.contact_id}


def _after(entry: WrittenEntry) -> dict[str, Any]:
    return entry.after or {}


Builder = Callable[[WrittenEntry, str, Facts], EventData | None]


@dataclass(frozen=True)
class _Plain:
    """A builder from the entry alone: every audience gets the same data."""

    build: Callable[[WrittenEntry], dict[str, Any]]

    def __call__(self, entry: WrittenEntry, audience: str, facts: Facts) -> EventData:
        return EventData(self.build(entry), None)


def _disclosure_recorded(entry: WrittenEntry, audience: str, facts: Facts) -> EventData | None:
    after = _after(entry)
    if after.get("audience") not in audiences_seen(audience):
        return None  # an endpoint never hears of a disclosure outside its audience
    data = {
        **_ids(entry, "disclosure"),
        **_contact(entry),
        "key": after.get("key"),
        "audience": after.get("audience"),
    }
    visible = facts.disclosures.get(int(entry.subject_id))
    personal = {"value": visible[1]} if visible else None
    return EventData(data, personal)


def _disclosure_withdrawn(entry: WrittenEntry, audience: str, facts: Facts) -> EventData | None:
    after = _after(entry)
    if after.get("audience") not in audiences_seen(audience):
        return None
    data = {**_ids(entry, "disclosure"), **_contact(entry), "key": after.get("key")}
    return EventData(data, None)


def _handoff(fields: tuple[str, ...]) -> Builder:
    def build(entry: WrittenEntry, audience: str, facts: Facts) -> EventData | None:
        handoff_id = int(entry.subject_id)
        say_so = facts.handoff_audiences.get(handoff_id, _after(entry).get("say_so_audience", ""))
        if not handoff_known(audience, say_so or ""):
            return None
        after = _after(entry)
        data = {"handoff": handoff_id, **_contact(entry)}
        data.update({name: after.get(name) for name in fields})
        return EventData(data, None)

    return build


def _deal_created(entry: WrittenEntry) -> dict[str, Any]:
    after = _after(entry)
    return {
        **_ids(entry, "deal"),
        "organization": after.get("organization"),
        "amount": after.get("amount"),
        "source": after.get("source") or after.get("derived_source"),
        "contacts": [member.get("contact") for member in after.get("contacts", [])],
    }


_DATA: dict[str, Builder] = {
    EventType.CONTACT_CREATED: _Plain(
        lambda e: {**_ids(e, "contact"), "organization": _after(e).get("organization")}
    ),
    EventType.CONTACT_MERGED: _Plain(
        lambda e: {"contact": _after(e).get("kept"), "merged": _after(e).get("merged")}
    ),
    # No personal data: the id of the person who was, and nothing about them.
    EventType.CONTACT_ERASED: _Plain(lambda e: _ids(e, "contact")),
    EventType.CONSENT_GRANTED: _Plain(
        lambda e: {**_ids(e, "consent"), **_contact(e), "purpose": _after(e).get("purpose")}
    ),
    EventType.CONSENT_WITHDRAWN: _Plain(
        lambda e: {**_ids(e, "consent"), **_contact(e), "purpose": _after(e).get("purpose")}
    ),
    EventType.DISCLOSURE_RECORDED: _disclosure_recorded,
    EventType.DISCLOSURE_WITHDRAWN: _disclosure_withdrawn,
    EventType.TOUCH_RECORDED: _Plain(
        lambda e: {
            **_ids(e, "touch"),
            **_contact(e),
            "channel": _after(e).get("channel"),
            "campaign": _after(e).get("campaign"),
            "kind": _after(e).get("kind"),
        }
    ),
    EventType.HANDOFF_CREATED: _handoff(("status", "due_at", "ruleset_version")),
    EventType.HANDOFF_ACCEPTED: _handoff(("status", "owner")),
    EventType.HANDOFF_REJECTED: _handoff(("status", "reason")),
    EventType.HANDOFF_EXPIRED: _handoff(("status",)),
    EventType.DEAL_CREATED: _Plain(_deal_created),
    EventType.SALE_RECORDED: _Plain(
        lambda e: {
            "deal": int(e.subject_id),
            "sale_event": _after(e).get("sale_event"),
            "kind": _after(e).get("kind"),
            "amount": _after(e).get("amount"),
        }
    ),
    EventType.DEAL_SOURCE_OVERRIDDEN: _Plain(
        lambda e: {
            **_ids(e, "deal"),
            "source": _after(e).get("source"),
            "derived_source": _after(e).get("derived_source"),
        }
    ),
    EventType.RULESET_ACTIVATED: _Plain(
        lambda e: {**_ids(e, "ruleset"), "version": _after(e).get("version")}
    ),
    EventType.ATTRIBUTION_RUN_COMPLETED: _Plain(
        lambda e: {
            **_ids(e, "run"),
            "conversions": _after(e).get("conversions"),
            "touches": _after(e).get("touches"),
        }
    ),
}

# The event types whose data is a pure function of their ledger entry (the ids and
# choices its ``after`` holds), whatever the endpoint's audience: their messages are
# written without data and built from the entry when sent. An entry never changes, so
# every try and replay of one sends the same body. The others need what the entry does
# not say (a disclosure's value, a handoff's say-so), read when the change is written.
BUILT_FROM_ENTRY: frozenset[str] = frozenset(
    event for event, build in _DATA.items() if isinstance(build, _Plain)
)

# The ledger actions whose every entry is one event of one type, with its data built from
# the entry: a batch of them becomes its messages set-based, from the ledger rows
# themselves (webhooks.outbox). A consent's entry is one of two types, a merge writes
# entries that are no event, and the rest depend on the endpoint's audience.
EVENT_OF_ACTION_SET_BASED: dict[str, str] = {
    action: event
    for action, event in _SIMPLE_EVENT_OF_ACTION.items()
    if event in BUILT_FROM_ENTRY and action != LedgerAction.CONTACT_MERGE
}

# Where the rest is (under /api/v1/), by event type.
_LINKS: dict[str, Callable[[dict[str, Any]], str]] = {
    EventType.CONTACT_CREATED: lambda d: f"contacts/{d['contact']}/",
    EventType.CONTACT_MERGED: lambda d: f"contacts/{d['contact']}/",
    EventType.CONSENT_GRANTED: lambda d: f"contacts/{d['contact']}/",
    EventType.CONSENT_WITHDRAWN: lambda d: f"contacts/{d['contact']}/",
    EventType.DISCLOSURE_RECORDED: lambda d: f"contacts/{d['contact']}/",
    EventType.DISCLOSURE_WITHDRAWN: lambda d: f"contacts/{d['contact']}/",
    EventType.TOUCH_RECORDED: lambda d: f"contacts/{d['contact']}/timeline/",
    EventType.HANDOFF_CREATED: lambda d: f"handoffs/{d['handoff']}/",
    EventType.HANDOFF_ACCEPTED: lambda d: f"handoffs/{d['handoff']}/",
    EventType.HANDOFF_REJECTED: lambda d: f"handoffs/{d['handoff']}/",
    EventType.HANDOFF_EXPIRED: lambda d: f"handoffs/{d['handoff']}/",
    EventType.DEAL_CREATED: lambda d: f"deals/{d['deal']}/",
    EventType.SALE_RECORDED: lambda d: f"deals/{d['deal']}/",
    EventType.DEAL_SOURCE_OVERRIDDEN: lambda d: f"deals/{d['deal']}/",
    EventType.RULESET_ACTIVATED: lambda d: f"rulesets/{d['ruleset']}/",
    EventType.ATTRIBUTION_RUN_COMPLETED: lambda d: f"attribution/runs/{d['run']}/",
}


def entry_data(entry: WrittenEntry, event_type: str) -> dict[str, Any]:
    """The data of an event of ``BUILT_FROM_ENTRY``, from its ledger entry (any audience)."""
    built = event_data(entry, event_type, "", Facts({}, {}))
    if built is None:  # pragma: no cover -- a plain builder always answers
        raise ValueError(f"{event_type} is not built from its entry alone")
    return built.data


def event_data(
    entry: WrittenEntry, event_type: str, audience: str, facts: Facts
) -> EventData | None:
    """The event's thin data for an endpoint acting for ``audience``; None: not for it."""
    built = _DATA[event_type](entry, audience, facts)
    if built is None:
        return None
    link = _LINKS.get(event_type)
    if link is not None:
        built.data["links"] = {"self": "/api/v1/" + link(built.data)}
    return built
