"""One canonical encoding of a ledger entry, whichever path wrote it.

An entry is hashed in Python when it is verified and when a batch is chained,
and by PostgreSQL itself when a single entry is appended (the hash computed
inside the INSERT) and when a deferring transaction flushes its entries (each
hashed in the flush's statement, its columns read back from the text it hashed).
These properties hold every path to the same hash and the same stored columns on
generated entries: any text, nested JSON, nulls, large numbers, back-dated
and time-zoned moments. The file runs in both passes (PostgreSQL: the SQL
INSERT, COPY and the deferred flush; SQLite: the ORM insert).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrecord.ledger import (
    LEDGER_COLUMNS,
    Actor,
    LedgerDraft,
    ledger_append,
    ledger_append_many,
    ledger_deferred,
    ledger_entry_hash,
    ledger_verify,
)
from leadrecord.models import ActorKind, LedgerAction, LedgerEntry

pytestmark = pytest.mark.django_db

# Any character a text column can hold: PostgreSQL refuses NUL, and no valid
# string holds a lone surrogate.
_character = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_text = st.text(_character, max_size=24)
_label = st.text(_character, max_size=64)
# Numbers as the services write them: integers of any size, and decimals a
# JSON reader gives back as written (an exponent form such as 1e+16 is not).
_number = st.integers(min_value=-(2**80), max_value=2**80) | st.integers(
    min_value=-(10**12), max_value=10**12
).map(lambda n: n / 100)
_json = st.recursive(
    st.none() | st.booleans() | _number | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=16,
)
_payload = st.none() | st.dictionaries(_text, _json, max_size=6)
_moment = st.none() | st.datetimes(
    min_value=datetime(1971, 1, 1),  # noqa: DTZ001 (bounds only; the zone is drawn below)
    max_value=datetime(2099, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)
_actor = st.builds(
    Actor,
    kind=st.sampled_from(ActorKind.values),
    label=st.text(_character, max_size=150),
    user_id=st.none() | st.integers(min_value=1, max_value=2**31 - 1),
)
_draft = st.builds(
    LedgerDraft,
    actor=_actor,
    action=st.sampled_from(list(LedgerAction)),
    subject_type=_label,
    subject_id=_label | st.integers(min_value=0, max_value=2**62),
    contact_id=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    before=_payload,
    after=_payload,
    reason=st.text(_character, max_size=200),
    occurred_at=_moment,
)


def _hash_of_draft(draft: LedgerDraft, row: dict[str, Any]) -> str:
    """The hash ledger_entry_hash gives the draft as written, before any database saw it."""
    return ledger_entry_hash(
        seq=row["seq"],
        occurred_at=draft.occurred_at or row["recorded_at"],
        recorded_at=row["recorded_at"],
        actor_kind=draft.actor.kind,
        actor_id=draft.actor.user_id,
        actor_label=draft.actor.label,
        action=draft.action,
        subject_type=draft.subject_type,
        subject_id=str(draft.subject_id),
        contact_id=draft.contact_id,
        before=draft.before,
        after=draft.after,
        reason=draft.reason,
        prev_hash=row["prev_hash"],
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(single=_draft, batch=st.lists(_draft, min_size=2, max_size=4))
def test_every_append_path_hashes_the_canonical_encoding(single, batch):
    with transaction.atomic():
        # One entry (hashed inside the INSERT on PostgreSQL), then a batch the
        # way event ingestion writes it (chained in Python, COPY on PostgreSQL).
        first = ledger_append_many([single])[0]
        ledger_append_many(batch, return_entries=False)
    rows = list(
        LedgerEntry.objects.filter(seq__gte=first.seq).order_by("seq").values(*LEDGER_COLUMNS)
    )
    assert len(rows) == 1 + len(batch)
    assert rows[0]["hash"] == first.hash
    for draft, row in zip([single, *batch], rows, strict=True):
        # What verification recomputes from the stored row ...
        assert row["hash"] == ledger_entry_hash(**{k: v for k, v in row.items() if k != "hash"})
        # ... is what the draft itself encodes to, and the JSON came back as written.
        assert row["hash"] == _hash_of_draft(draft, row)
        assert (row["before"], row["after"]) == (draft.before, draft.after)
    assert ledger_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(_draft, min_size=1, max_size=5))
def test_the_deferred_flush_stores_and_hashes_what_the_drafts_encode(batch):
    """The flush of a deferring transaction (a new person's form post) chains its
    entries in SQL and reads each one's columns back from the canonical JSON it hashed:
    the stored row, its hash and the draft must all agree."""
    with transaction.atomic(), ledger_deferred() as deferring:
        assert deferring
        ledger_append_many(batch, return_entries=False)
    rows = list(LedgerEntry.objects.order_by("-seq").values(*LEDGER_COLUMNS)[: len(batch)])[::-1]
    for draft, row in zip(batch, rows, strict=True):
        assert row["hash"] == ledger_entry_hash(**{k: v for k, v in row.items() if k != "hash"})
        assert row["hash"] == _hash_of_draft(draft, row)
        assert (row["before"], row["after"]) == (draft.before, draft.after)
        assert (row["actor_kind"], row["actor_id"], row["actor_label"]) == (
            draft.actor.kind,
            draft.actor.user_id,
            draft.actor.label,
        )
        assert (row["subject_id"], row["contact_id"], row["reason"]) == (
            str(draft.subject_id),
            draft.contact_id,
            draft.reason,
        )
        if draft.occurred_at is not None:
            assert row["occurred_at"] == draft.occurred_at
    assert ledger_verify().ok


def test_the_hash_is_sha256_of_the_canonical_json_array():
    """The encoding spelled out once, so that a change to it is a deliberate one."""
    import hashlib

    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    expected = hashlib.sha256(
        (
            '[7,"2026-01-02T03:04:05.000006+00:00","2026-01-02T03:04:05.000006+00:00",'
            '"user",3,"Zoë","contact.create","contact","12",12,null,'
            '{"a":[1,null,"東京"],"b":{"y":2,"z":1}},"why",'
            f'"{"0" * 64}"]'
        ).encode()
    ).hexdigest()
    assert (
        ledger_entry_hash(
            seq=7,
            occurred_at=moment,
            recorded_at=moment,
            actor_kind="user",
            actor_id=3,
            actor_label="Zoë",
            action=LedgerAction.CONTACT_CREATE,
            subject_type="contact",
            subject_id="12",
            contact_id=12,
            before=None,
            after={"b": {"z": 1, "y": 2}, "a": [1, None, "東京"]},
            reason="why",
            prev_hash="0" * 64,
        )
        == expected
    )


@pytest.mark.parametrize("many", [False, True], ids=["single", "batch"])
def test_an_action_outside_the_list_is_refused_and_nothing_is_written(many):
    draft = LedgerDraft(
        actor=Actor.system(), action="contact.record", subject_type="contact", subject_id=1
    )
    with pytest.raises(ValueError, match="LedgerAction"), transaction.atomic():
        if many:
            ledger_append_many([draft, draft])
        else:
            ledger_append(
                actor=draft.actor, action=draft.action, subject_type="contact", subject_id=1
            )
    assert not LedgerEntry.objects.exists()


def test_the_bulk_events_path_writes_only_listed_actions(users, api_client_for):
    """Event ingestion builds its actions from the event's type; each is a member."""
    person = {
        "email": "ada@acme.example",
        "organization": {"name": "Acme", "domain": "acme.example"},
    }
    common = {"source_system": "crm", "occurred_at": "2026-10-01T09:00:00Z", "contact": person}
    events = [
        {
            **common,
            "type": "touch",
            "external_id": "t-1",
            "channel": "webinar",
            "kind": "webinar_attended",
        },
        {
            **common,
            "type": "consent",
            "external_id": "c-1",
            "purpose": "sales_contact",
            "granted": True,
            "source": "demo request form",
        },
        {
            **common,
            "type": "disclosure",
            "external_id": "d-1",
            "key": "journey_stage",
            "value": "ready_to_talk",
            "audience": "all",
            "purpose": "sales_contact",
            "source": "self",
        },
    ]
    answer = api_client_for(users["integration"]).post("/api/v1/events/", {"events": events})
    assert answer.status_code == 200, answer.content
    assert answer.json()["created"] == 3
    written = set(LedgerEntry.objects.values_list("action", flat=True))
    assert written == {
        LedgerAction.ORGANIZATION_CREATE,
        LedgerAction.CONTACT_CREATE,
        LedgerAction.TOUCH_RECORD,
        LedgerAction.CONSENT_RECORD,
        LedgerAction.DISCLOSURE_RECORD,
    }
    assert written <= set(LedgerAction.values)
