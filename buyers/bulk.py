"""A new person's form post in a few statements (PostgreSQL).

The common form post (an email the record does not know, from a browser
without a visitor id, at an organization the record knows or none) ran its
services one by one: the person, their key, their consents and disclosures,
the touch, the submission, each a statement or three. bench/forms.py's rate of
posts needed fewer: here one query reads everything the services would have
checked (the email, the organization, an erasure, the active ruleset) and
takes every id the rows need from their sequences; the rows then go in one
round trip, and the ledger entries are built from them exactly as the services
build theirs (the same payloads, in the same order), kept for the deferred
flush (``leadrecord.ledger.ledger_deferred``).

Anything else (a known email, an organization to make, an email once erased,
SQLite) answers ``None`` having written nothing, and the caller runs the
services. With an active ruleset the rows are sent before each scoring, so
scoring reads what it would have read.

Raw SQL, as in the other ``bulk`` modules: only for this measured path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, models
from django.utils import timezone
from psycopg2.extras import Json

from contacts import rules as contact_rules
from contacts import signals as contact_signals
from contacts.erasure import email_hashes
from contacts.models import (
    CONSENT_COLUMNS,
    CONTACT_COLUMNS,
    DISCLOSURE_COLUMNS,
    JOURNEY_STAGE_KEY,
    TOUCH_COLUMNS,
    Campaign,
    Channel,
    Consent,
    ConsentPurpose,
    Contact,
    ContactKey,
    Disclosure,
    DisclosureSource,
    ErasedEmail,
    Organization,
    Touch,
    TouchKind,
)
from contacts.sealing import contact_key_new
from contacts.services import (
    consent_ledger_payload,
    contact_ledger_payload,
    disclosure_ledger_payload,
    domain_is_free_mail,
    email_domain,
    email_normalize,
    touch_ledger_payload,
)
from contacts.services.checks import contacts_changed
from handoff.models import Ruleset, RulesetStatus
from handoff.selectors import ruleset_active_none_known, ruleset_active_remember
from leadrecord.errors import InvalidInput
from leadrecord.ledger import (
    LEDGER_HEAD_SEQ_SQL,
    Actor,
    LedgerDraft,
    LedgerRedo,
    ledger_append_many,
    ledger_deferred_flush,
    ledger_deferred_recheck,
)
from leadrecord.models import LedgerAction
from leadrecord.prepared import as_prepared, execute_prepared, prepared_forget, prepared_name

from .ledger_payloads import form_submission_ledger_payload
from .models import FORM_SUBMISSION_COLUMNS, BuyerForm, FormSubmission, Visitor

if TYPE_CHECKING:
    from .services import Arrival, FormInput

FORM_NOT_PUBLISHED = "not_published"

# What the services this path stands for would have the flush recheck: an erasure or
# a merge of the person (contact_create, person_answers_record, touch_record), an
# organization made (contact_create found none), the form changed (the submission).
_RECHECK = (
    LedgerAction.CONTACT_ERASE,
    LedgerAction.CONTACT_MERGE,
    LedgerAction.ORGANIZATION_CREATE,
    LedgerAction.FORM_UPDATE,
)


@functools.cache
def _columns(model: type[models.Model], names: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    return ", ".join(
        quote(str(getattr(model._meta.get_field(name), "column", name))) for name in names
    )


@functools.cache
def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _insert_sql(model: type[models.Model], names: tuple[str, ...], count: int) -> str:
    """``INSERT`` of ``count`` rows of ``names`` into ``model``'s table (made once per
    shape and process)."""
    row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
    return (
        f"INSERT INTO {_table(model)} ({_columns(model, names)}) "  # noqa: S608 -- model names
        f"VALUES {', '.join([row_sql] * count)}"
    )


@functools.lru_cache(maxsize=256)
def _with_statement(parts: tuple[str, ...]) -> tuple[str, str]:
    """``parts`` as one statement (data-modifying WITH parts, the last the main one) and
    its name, made from its text (once per shape of post and process)."""
    *first, last = parts
    sql = "".join(
        ("WITH " if index == 0 else ", ") + f"w{index} AS ({part})"
        for index, part in enumerate(first)
    )
    sql = f"{sql} {last}" if first else last
    return sql, prepared_name("leadrecord_form_write", sql)


@functools.cache
def _sequence(model: type[models.Model]) -> str:
    """The sequence of ``model``'s id, by name (looked up once per process: a table's
    sequence keeps its name)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [model._meta.db_table, "id"])
        return str(cursor.fetchone()[0])


class _Batch:
    """Statements sent together, in one round trip."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.params: list[Any] = []

    def insert(
        self,
        model: type[models.Model],
        names: tuple[str, ...],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        if not rows:
            return
        self.sql.append(_insert_sql(model, names, len(rows)))
        for row in rows:
            self.params.extend(row)

    def send(self) -> None:
        """Run what was added."""
        if not self.sql:
            return
        sql, params = "; ".join(self.sql), self.params
        self.sql, self.params = [], []
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    def prepared(self) -> tuple[str, list[Any], Callable[[], None]]:
        """What was added as one prepared statement (data-modifying WITH parts, the last
        insert the main one; named by its text, so one per shape of post): the SQL to
        run (preparing it first on a connection that has not), its parameters, and
        what to call once it ran."""
        sql, name = _with_statement(tuple(self.sql))
        run, ran = as_prepared(name, sql, len(self.params))
        return run, self.params, ran


M = TypeVar("M", bound=models.Model)


@functools.cache
def _attnames(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(field.attname for field in model._meta.concrete_fields)


def _ordered(names: tuple[str, ...], row: dict[str, Any]) -> list[Any]:
    """``row``'s values in the order of ``names`` (each must be given)."""
    return [row[name] for name in names]


def _instance(model: type[M], row: dict[str, Any]) -> M:
    """The instance of a row this post inserts, built as Django builds one it reads
    (every column in order, positionally: a third of the cost of keyword arguments)."""
    names = _attnames(model)
    return model.from_db(DEFAULT_DB_ALIAS, names, _ordered(names, row))


def _inserted(batch: _Batch, model: type[M], names: tuple[str, ...], row: dict[str, Any]) -> M:
    """Add ``row`` (its ``names`` columns) to the batch's inserts; its instance."""
    batch.insert(model, names, [_ordered(names, row)])
    return _instance(model, row)


# The columns each insert of a form post names.
_CONTACT_NAMES = ("id", *CONTACT_COLUMNS)
_CONSENT_NAMES = ("id", *CONSENT_COLUMNS)
_DISCLOSURE_NAMES = ("id", *DISCLOSURE_COLUMNS)
_TOUCH_NAMES = ("id", *TOUCH_COLUMNS)
_SUBMISSION_COLUMNS = ("id", *FORM_SUBMISSION_COLUMNS)


# The campaign a form's touch names, as form_submit finds it (contacts.selectors.
# campaign_for_utm, else the form's own), with its channel: joined to the one read.
_CAMPAIGN_ATTNAMES = tuple(field.attname for field in Campaign._meta.concrete_fields)
_CAMPAIGN_COLUMNS = ", ".join(
    f"campaign.{field.column}" for field in Campaign._meta.concrete_fields
)
_CAMPAIGN_SQL = (
    f"{_CAMPAIGN_COLUMNS}, channel.key, channel.team, channel.active FROM facts "  # noqa: S608 -- model names
    f"LEFT JOIN {Campaign._meta.db_table} AS campaign ON campaign.id = COALESCE(("
    f"SELECT id FROM {Campaign._meta.db_table} WHERE %s <> '' "
    "AND UPPER(utm_campaign) = UPPER(%s) ORDER BY id LIMIT 1), %s) "
    f"LEFT JOIN {Channel._meta.db_table} AS channel ON channel.id = campaign.channel_id"
)


# The organization a new person's post names, as contact_create finds it: by name (any
# case, which the organization_name_lower index serves), by the email's domain, or none.
_ORGANIZATION_SQL = {
    "name": "(SELECT id FROM {table} WHERE LOWER(name) = LOWER(%s) ORDER BY id LIMIT 1)",
    # The index on domain holds only known domains: said so here too, so that the
    # statement's generic plan (any domain) can use it.
    "domain": "(SELECT id FROM {table} WHERE domain = %s AND NOT domain = '' ORDER BY id LIMIT 1)",
    "none": "NULL::bigint",
}


@functools.cache
def _read_statement(organization_kind: str) -> tuple[str, str]:
    """The one read's SQL for this kind of organization lookup, and its prepared name
    (made from its text: a connection kept by a pooler across a new release prepares
    the new text under a new name)."""
    organization_sql = _ORGANIZATION_SQL[organization_kind].format(table=_table(Organization))
    sql = (
        f"WITH facts AS (SELECT {LEDGER_HEAD_SEQ_SQL} AS head, "  # noqa: S608 -- model names
        f"(SELECT id FROM {_table(Contact)} WHERE email_key = %s) AS known, "
        f"{organization_sql} AS organization, "
        f"EXISTS (SELECT 1 FROM {_table(ErasedEmail)} "
        "WHERE email_hash = ANY(%s::varchar[])) AS erased, "
        f"(SELECT id FROM {_table(Ruleset)} WHERE status = %s LIMIT 1) AS ruleset) "
        "SELECT head, organization, ruleset, "
        "CASE WHEN known IS NULL AND NOT erased AND (organization IS NOT NULL OR %s) "
        "THEN ARRAY[nextval(%s)] || ARRAY(SELECT nextval(%s) FROM generate_series(1, %s)) "
        "|| ARRAY(SELECT nextval(%s) FROM generate_series(1, %s)) "
        f"|| ARRAY[nextval(%s), nextval(%s)] END, {_CAMPAIGN_SQL}"
    )
    return sql, prepared_name(f"leadrecord_form_read_{organization_kind}", sql)


@dataclass(frozen=True)
class NewPersonRead:
    """What ``new_person_read`` found: the ledger's head, and for a new person at a known
    organization (or none) the ids of every row their post writes (else ``ids`` is None)."""

    head_seq: int
    campaign: Campaign | None
    ids: list[int] | None
    organization_id: int | None
    ruleset_id: int | None
    email: str
    email_key: str
    now: datetime
    consents: list[str]
    answers: list[tuple[str, str, str]]


def new_person_read(
    *,
    form: BuyerForm,
    data: FormInput,
    occurred_at: datetime | None,
    utm_campaign: str,
) -> NewPersonRead:
    """The one read of a form post before it defers its entries (inside its transaction):
    the checks of ``contact_create`` and ``person_answers_record`` (raising their
    errors), then in one query the ledger's head, the campaign (``utm_campaign``'s,
    else the form's, as ``form_submit`` finds it), whether the email is known, the
    organization, whether the email was ever erased, the active ruleset and, for a new
    person, every row's id from its sequence. PostgreSQL only.
    """
    now = timezone.now()
    when = occurred_at or now
    email = data.email.strip()
    email_key = email_normalize(email)
    # What contact_create would have found or refused: anything but a new person at a
    # known organization (or none) goes the services' way.
    organization_params: list[Any]
    organization_name = data.organization.strip()
    if data.organization and not organization_name:
        # A blank name: the services refuse it; nothing here is new-person work.
        organization_kind, organization_params = "none", []
    elif organization_name:
        organization_kind, organization_params = "name", [organization_name]
    else:
        domain = email_domain(email_key)
        if domain and not domain_is_free_mail(domain):
            organization_kind, organization_params = "domain", [domain]
        else:
            organization_kind, organization_params = "none", []
    consents = sorted(data.consents)
    for purpose in consents:
        contact_rules.consent_check(purpose=purpose)
    answers = [
        (key, answer.value.strip(), answer.audience)
        for key, answer in data.answers.items()
        if answer.value
    ]
    for key, value, audience in answers:
        contact_rules.disclosure_check(
            key=key,
            value=value,
            audience=audience,
            purpose=form.purpose,
            source=DisclosureSource.FORM,
            expires_at=None,
            disclosed_at=when,
        )
    read_sql, read_name = _read_statement(organization_kind)
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            read_name,
            read_sql,
            [
                email_key,
                *organization_params,
                email_hashes(email_key),
                RulesetStatus.ACTIVE.value,
                not data.organization,
                _sequence(Contact),
                _sequence(Consent),
                len(consents),
                _sequence(Disclosure),
                len(answers),
                _sequence(Touch),
                _sequence(FormSubmission),
                utm_campaign,
                utm_campaign,
                form.campaign_id,
            ],
        )
        head_seq, organization_id, ruleset_id, ids, *found = cursor.fetchone()
    if ids is not None and len(ids) != 1 + len(consents) + len(answers) + 2:
        raise RuntimeError(f"unexpected ids for a form post: {ids}")
    campaign = None
    if found[0] is not None:
        campaign = Campaign(**dict(zip(_CAMPAIGN_ATTNAMES, found, strict=False)))
        channel_key, channel_team, channel_active = found[len(_CAMPAIGN_ATTNAMES) :]
        campaign.channel = Channel(
            id=campaign.channel_id, key=channel_key, team=channel_team, active=channel_active
        )
    return NewPersonRead(
        head_seq=head_seq,
        campaign=campaign,
        ids=ids,
        organization_id=organization_id,
        ruleset_id=ruleset_id,
        email=email,
        email_key=email_key,
        now=now,
        consents=consents,
        answers=answers,
    )


def new_person_form_write(
    read: NewPersonRead,
    *,
    form: BuyerForm,
    data: FormInput,
    arrival: Arrival,
    occurred_at: datetime | None,
    campaign: Campaign | None,
    channel: Channel,
    actor_label: str,
    visitor_hash: str | None,
) -> FormSubmission:
    """``form_submit``'s writes for a new person (``read.ids`` given), inside its
    transaction once it defers its entries (``ledger_deferred(head_seq=read.head_seq)``),
    its entries flushed at the end; the submission. ``visitor_hash``: the hash of a new
    visitor id to link to the person (analytics consent given).

    The same rows, ledger entries (in the same order, the same payloads) and signals as
    ``contact_create``, ``person_answers_record``, ``touch_record`` and the submission's
    insert.
    """
    if read.ids is None:
        raise ValueError("not a new person's post")
    contact_rules.touch_check(channel=channel, campaign=campaign, kind=TouchKind.FORM)
    now, email, email_key = read.now, read.email, read.email_key
    when = occurred_at or now
    organization_id = read.organization_id
    offered = {item["purpose"]: item for item in form.consents}
    consents_in, answers, ids = read.consents, read.answers, read.ids
    contact_id = ids[0]
    consent_ids = ids[1 : 1 + len(consents_in)]
    disclosure_ids = ids[1 + len(consents_in) : -2]
    touch_id, submission_id = ids[-2], ids[-1]
    ledger_deferred_recheck(_RECHECK)
    ruleset_active_remember()
    scoring = read.ruleset_id is not None
    if not scoring:
        ruleset_active_none_known()

    batch = _Batch()
    contact = _inserted(
        batch,
        Contact,
        _CONTACT_NAMES,
        {
            "id": contact_id,
            "email": email,
            "email_key": email_key,
            "first_name": data.first_name.strip(),
            "last_name": data.last_name.strip(),
            "title": "",
            "organization_id": organization_id,
            "score": 0,
            "qualified": False,
            "created_at": occurred_at or now,
            "merged_into_id": None,
            "merged_at": None,
            "erased_at": None,
        },
    )
    key = contact_key_new()
    batch.insert(ContactKey, ("contact_id", "key"), [(contact_id, key)])
    drafts = [
        LedgerDraft(
            actor=Actor.person(None, actor_label),
            action=LedgerAction.CONTACT_CREATE,
            subject_type="contact",
            subject_id=contact_id,
            contact_id=contact_id,
            after=contact_ledger_payload(
                contact_id=contact_id,
                organization_id=organization_id,
                email=email,
                first_name=contact.first_name,
                last_name=contact.last_name,
                title=contact.title,
                key=key,
            ),
            occurred_at=occurred_at,
        )
    ]
    actor = Actor.person(contact_id, actor_label)
    # Rows by column, without instances: nothing reads them but the insert and the drafts.
    source = f"form:{form.slug}".strip()
    consents: list[dict[str, Any]] = [
        {
            "id": pk,
            "contact_id": contact_id,
            "purpose": purpose,
            "granted": True,
            "source": source,
            "notice_version": offered[purpose]["version"].strip(),
            "occurred_at": occurred_at or now,
            "recorded_at": now,
            "event_source_system": "",
            "event_external_id": None,
        }
        for pk, purpose in zip(consent_ids, consents_in, strict=True)
    ]
    disclosures: list[dict[str, Any]] = [
        {
            "id": pk,
            "contact_id": contact_id,
            "key": key_name,
            "value": value,
            "audience": audience,
            "purpose": form.purpose,
            "source": DisclosureSource.FORM,
            "disclosed_at": when,
            "recorded_at": now,
            "expires_at": None,
            "event_source_system": "",
            "event_external_id": None,
        }
        for pk, (key_name, value, audience) in zip(disclosure_ids, answers, strict=True)
    ]
    batch.insert(Consent, _CONSENT_NAMES, [_ordered(_CONSENT_NAMES, row) for row in consents])
    batch.insert(
        Disclosure, _DISCLOSURE_NAMES, [_ordered(_DISCLOSURE_NAMES, row) for row in disclosures]
    )
    drafts += [
        LedgerDraft(
            actor=actor,
            action=LedgerAction.CONSENT_RECORD,
            subject_type="consent",
            subject_id=row["id"],
            contact_id=contact_id,
            after=consent_ledger_payload(
                purpose=row["purpose"],
                granted=True,
                source=source,
                notice_version=row["notice_version"],
            ),
            occurred_at=occurred_at,
        )
        for row in consents
    ]
    drafts += [
        LedgerDraft(
            actor=actor,
            action=LedgerAction.DISCLOSURE_RECORD,
            subject_type="disclosure",
            subject_id=row["id"],
            contact_id=contact_id,
            after=disclosure_ledger_payload(
                contact_id=contact_id,
                key=row["key"],
                value=row["value"],
                audience=row["audience"],
                purpose=form.purpose,
                source=DisclosureSource.FORM,
                expires_at=None,
                person_key=key,
            ),
            occurred_at=occurred_at,
        )
        for row in disclosures
    ]
    ledger_append_many(drafts, return_entries=False)
    # Scores and a say-so follow the answers, as in person_answers_record; they read
    # the rows only under an active ruleset (without one they change nothing).
    if disclosures or ConsentPurpose.SALES_CONTACT in consents_in:
        if scoring:
            _send(batch)
        contacts_changed([contact_id], actor)
    stages = [row["id"] for row in disclosures if row["key"] == JOURNEY_STAGE_KEY]
    if stages:
        if scoring:
            _send(batch)
        contact_signals.journey_stages_recorded.send(sender=Contact, disclosure_ids=stages)

    touch = _inserted(
        batch,
        Touch,
        _TOUCH_NAMES,
        {
            "id": touch_id,
            "contact_id": contact_id,
            "channel_id": channel.pk,
            "campaign_id": None if campaign is None else campaign.pk,
            "kind": TouchKind.FORM,
            "occurred_at": when,
            "recorded_at": timezone.now(),
            "source_system": "",
            "external_id": None,
            "recorded_by_id": actor.user_id,
        },
    )
    touch.channel, touch.campaign = channel, campaign
    touch_draft = LedgerDraft(
        actor=actor,
        action=LedgerAction.TOUCH_RECORD,
        subject_type="touch",
        subject_id=touch_id,
        contact_id=contact_id,
        after=touch_ledger_payload(
            channel_key=channel.key,
            campaign_id=touch.campaign_id,
            kind=touch.kind,
            source_system=touch.source_system,
            external_id=touch.external_id,
        ),
        occurred_at=when,
    )
    ledger_append_many([touch_draft], return_entries=False)
    if scoring:
        _send(batch)
    contacts_changed([contact_id], actor)

    if visitor_hash is not None:
        batch.insert(
            Visitor, ("token_hash", "contact_id", "created_at"), [(visitor_hash, contact_id, now)]
        )
    submission_row = {
        "id": submission_id,
        "form_id": form.pk,
        "contact_id": contact_id,
        "touch_id": touch_id,
        "campaign_id": None if campaign is None else campaign.pk,
        "shared_device": False,
        "created_person": True,
        "submitted_at": when,
        "page_url": arrival.page_url,
        "referrer": arrival.referrer,
        "utm": arrival.utm,
        "click_ids": arrival.click_ids,
    }
    submission = _instance(FormSubmission, submission_row)
    submission.form, submission.contact, submission.touch = form, contact, touch
    submission.campaign = campaign
    values = [
        Json(value) if name in ("utm", "click_ids") else value
        for name, value in zip(
            _SUBMISSION_COLUMNS, _ordered(_SUBMISSION_COLUMNS, submission_row), strict=True
        )
    ]
    ledger_append_many(
        [
            LedgerDraft(
                actor=actor,
                action=LedgerAction.FORM_SUBMIT,
                subject_type="form_submission",
                subject_id=submission_id,
                contact_id=contact_id,
                after=form_submission_ledger_payload(
                    form_slug=form.slug,
                    touch_id=touch_id,
                    campaign_id=campaign.pk if campaign is not None else None,
                    shared_device=False,
                    created_person=True,
                    arrival=arrival,
                    key=key,
                    contact_id=contact_id,
                ),
                occurred_at=occurred_at,
            )
        ],
        return_entries=False,
    )
    # The last rows go with the flush (the lock, the recheck, then the entries' COPY).
    # The submission is inserted only while the form is published (selectors.
    # form_published remembers forms a moment), as by the services' path: else all of
    # this is undone.
    batch.sql.append(_submission_insert_sql())
    batch.params.extend([*values, form.pk])
    first, first_params, ran = batch.prepared()
    try:
        flushed = ledger_deferred_flush(
            first=first,
            first_params=first_params,
            check=f"EXISTS (SELECT 1 FROM {_table(FormSubmission)} WHERE id = %s)",  # noqa: S608
            check_params=[submission_id],
        )
    except BaseException as error:
        # Whatever undid the post (a clash, a recheck, the lock long in coming) may have
        # come after the statement was prepared, which outlasts the transaction: which
        # ones are prepared is read again next time.
        prepared_forget()
        if isinstance(error, IntegrityError):
            raise LedgerRedo("a row this post wrote clashed") from error
        raise
    ran()
    if not flushed:
        raise InvalidInput(FORM_NOT_PUBLISHED, "This form is not published.", attr="form")
    return submission


@functools.cache
def _submission_insert_sql() -> str:
    """The submission's insert, made only while its form is published."""
    return (
        f"INSERT INTO {_table(FormSubmission)} ({_columns(FormSubmission, _SUBMISSION_COLUMNS)}) "  # noqa: S608 -- model names
        f"SELECT {', '.join(['%s'] * len(_SUBMISSION_COLUMNS))} FROM {_table(BuyerForm)} "
        "WHERE id = %s AND published ON CONFLICT DO NOTHING"
    )


def _send(batch: _Batch) -> None:
    try:
        batch.send()
    except IntegrityError as error:
        # The same email inserted a moment ago by another post (the unique key
        # caught it), or a row this one names deleted: undone, and sent again the
        # services' way, which answers either as they always do.
        raise LedgerRedo("a row this post wrote clashed") from error
