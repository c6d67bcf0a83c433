"""Every stored field that could hold text about a person, and how erasure covers it.

Erasure (``contacts.services.contact_erase``) must remove a person from every
copy the product keeps. This registry names each text, JSON, binary and file
field of the project's models as personal, with how erasure removes it, or as
not personal, with why not. A test (``tests/contacts/test_erasure_coverage.py``)
fails when a model gains such a field that is not listed here, and checks, for
each personal field, that erasure really removes a value seeded into it.

Apps that are not the project's (Django's own, DRF's tokens, django-axes)
are listed as a whole: they hold the staff's accounts, sessions and logins,
never the people on record.

Keys are ``app_label.Model.field``. Read docs/erasure.md for the whole story.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Erasure(StrEnum):
    EMPTIED = "emptied"  # erasure empties the value in place; the row stays for the totals
    DELETED = "deleted"  # erasure deletes the row
    SEALED = "sealed"  # stored only sealed under the person's key, which erasure deletes
    SCRUBBED = "scrubbed"  # erasure takes the person's part out of the text or JSON
    FORGOTTEN = "forgotten"  # erasure deletes the rows whose value names the person
    KEYED_HASH = "keyed_hash"  # kept on purpose, as a keyed hash (docs/erasure.md)


@dataclass(frozen=True)
class Personal:
    erasure: Erasure
    how: str


@dataclass(frozen=True)
class NotPersonal:
    why: str


Classification = Personal | NotPersonal

_ID_IN_SENDER = NotPersonal(
    "an event's id in the system that sent it; kept in the ledger in plain to recognise "
    "repeats, so senders must not put personal data in it"
)
_CHOICE = NotPersonal("one of a fixed set of choices")
_HASH = NotPersonal("a hash or digest of the record, for chaining or matching")
_RULES = NotPersonal("configuration made by staff: rules, campaigns, channels, targets")
_REASON = NotPersonal(
    "why staff made a change, kept in the ledger in plain (which cannot change): a "
    "reference or a rule, never a value about a person"
)

PERSONAL_DATA: dict[str, Classification] = {
    # --- the ledger -------------------------------------------------------------------
    "leadrecord.LedgerEntry.actor_kind": _CHOICE,
    "leadrecord.LedgerEntry.actor_label": NotPersonal("the staff user or system that acted"),
    "leadrecord.LedgerEntry.action": _CHOICE,
    "leadrecord.LedgerEntry.subject_type": _CHOICE,
    "leadrecord.LedgerEntry.subject_id": NotPersonal("a row's id"),
    "leadrecord.LedgerEntry.before": Personal(
        Erasure.SEALED,
        "personal values are sealed with the person's key (contacts.sealing); erasure "
        "deletes the key, so they can never be read again, and the chain still verifies",
    ),
    "leadrecord.LedgerEntry.after": Personal(
        Erasure.SEALED,
        "personal values are sealed with the person's key (contacts.sealing); erasure "
        "deletes the key, so they can never be read again, and the chain still verifies",
    ),
    "leadrecord.LedgerEntry.reason": _REASON,
    "leadrecord.LedgerEntry.prev_hash": _HASH,
    "leadrecord.LedgerEntry.hash": _HASH,
    "leadrecord.PeriodicClaim.job": NotPersonal("a periodic job's name"),
    "leadrecord.PeriodicClaim.outcome": _CHOICE,
    "leadrecord.PeriodicClaim.error": NotPersonal(
        "a periodic job's exception text; jobs take no personal values as arguments"
    ),
    "leadrecord.LedgerCheckpoint.hash": _HASH,
    "leadrecord.LedgerCheckpoint.signed_at": NotPersonal("when a checkpoint was signed, as signed"),
    "leadrecord.LedgerCheckpoint.signature": NotPersonal(
        "an Ed25519 signature over seq, hash, time"
    ),
    "leadrecord.LedgerCheckpoint.public_key": NotPersonal(
        "the checkpoint signing key's public half"
    ),
    # --- people -----------------------------------------------------------------------
    "contacts.Organization.name": NotPersonal("a company's name"),
    "contacts.Organization.domain": NotPersonal("a company's web domain"),
    "contacts.Contact.email": Personal(Erasure.EMPTIED, "set to NULL"),
    "contacts.Contact.email_key": Personal(Erasure.EMPTIED, "set to NULL"),
    "contacts.Contact.first_name": Personal(Erasure.EMPTIED, "emptied"),
    "contacts.Contact.last_name": Personal(Erasure.EMPTIED, "emptied"),
    "contacts.Contact.title": Personal(Erasure.EMPTIED, "emptied"),
    "contacts.ContactKey.key": Personal(
        Erasure.DELETED, "the person's sealing key: deleted, which shreds their ledger values"
    ),
    "contacts.Consent.purpose": _CHOICE,
    "contacts.Consent.source": NotPersonal(
        "where consent was given (a form's or notice's name), in the ledger in plain"
    ),
    "contacts.Consent.notice_version": NotPersonal("the version of a privacy notice"),
    "contacts.Consent.event_source_system": NotPersonal("the name of a sending system"),
    "contacts.Consent.event_external_id": _ID_IN_SENDER,
    "contacts.Disclosure.key": NotPersonal("the name of what was shared (budget, role, ...)"),
    "contacts.Disclosure.value": Personal(Erasure.EMPTIED, "emptied"),
    "contacts.Disclosure.audience": _CHOICE,
    "contacts.Disclosure.purpose": _CHOICE,
    "contacts.Disclosure.source": _CHOICE,
    "contacts.Disclosure.event_source_system": NotPersonal("the name of a sending system"),
    "contacts.Disclosure.event_external_id": _ID_IN_SENDER,
    "contacts.ErasedEmail.email_hash": Personal(
        Erasure.KEYED_HASH,
        "what erasure keeps: an HMAC-SHA256 of the email, to refuse old data about the "
        "person (contacts.erasure)",
    ),
    # --- touches and their imports ----------------------------------------------------
    "contacts.Channel.key": _RULES,
    "contacts.Channel.team": _CHOICE,
    "contacts.Campaign.name": _RULES,
    "contacts.Campaign.utm_source": _RULES,
    "contacts.Campaign.utm_medium": _RULES,
    "contacts.Campaign.utm_campaign": _RULES,
    "contacts.Touch.kind": _CHOICE,
    "contacts.Touch.source_system": NotPersonal("the name of a sending system"),
    "contacts.Touch.external_id": _ID_IN_SENDER,
    "contacts.IdempotencyRecord.key": NotPersonal("a caller's Idempotency-Key"),
    "contacts.IdempotencyRecord.request_hash": _HASH,
    "contacts.IdempotencyRecord.response": Personal(
        Erasure.FORGOTTEN,
        "a kept answer that names the person (an external id may carry an email) is "
        "deleted; a retry then runs afresh and meets the erasure check",
    ),
    "contacts.ImportJob.file_name": Personal(
        Erasure.SCRUBBED,
        "replaced by import-<id>.csv when it holds the person's email or a part of their "
        "name, in every import",
    ),
    "contacts.ImportJob.sha256": NotPersonal(
        "the SHA-256 of the uploaded file as a whole; it names generated external ids"
    ),
    "contacts.ImportJob.content": Personal(
        Erasure.SCRUBBED,
        "the uploaded file, kept until it is imported: the person's rows become blank "
        "lines (the rest keeps its row numbers and stays importable) and cells of ignored "
        "columns naming them are emptied",
    ),
    "contacts.ImportJob.mode": _CHOICE,
    "contacts.ImportJob.status": _CHOICE,
    "contacts.ImportJob.errors": Personal(
        Erasure.SCRUBBED,
        "findings are a row number, a column and a fixed message (never a cell's value); "
        "the findings of the person's rows leave with the rows",
    ),
    "contacts.ImportJob.row_report": NotPersonal("row numbers as ranges, per outcome"),
    "contacts.ImportJob.message": NotPersonal("a fixed message about the file as a whole"),
    "contacts.ImportJob.column_map": NotPersonal(
        "the uploader's choice of the file's column (a header, never a cell) per field"
    ),
    "contacts.ImportJob.time_zone": NotPersonal("an IANA time-zone name the uploader chose"),
    # --- handoffs and deals -----------------------------------------------------------
    "handoff.Ruleset.name": _RULES,
    "handoff.Ruleset.status": _CHOICE,
    "handoff.Ruleset.points": _RULES,
    "handoff.Handoff.say_so_audience": _CHOICE,
    "handoff.Handoff.status": _CHOICE,
    "handoff.Handoff.note": Personal(Erasure.EMPTIED, "emptied (handoff.services)"),
    "handoff.Handoff.buyer_signal": NotPersonal(
        "which kind of say-so allowed the handoff (consent or stage), from a fixed set"
    ),
    "handoff.Handoff.reason": _CHOICE,
    "handoff.Handoff.decision_note": Personal(Erasure.EMPTIED, "emptied (handoff.services)"),
    "handoff.Deal.name": NotPersonal("a deal with an organization"),
    "handoff.Deal.state": _CHOICE,
    "handoff.Deal.derived_source": _CHOICE,
    "handoff.Deal.derived_source_reason": NotPersonal(
        "written by the sourcing rule from ids, counts and rules, never a name"
    ),
    "handoff.Deal.source_override": _CHOICE,
    "handoff.Deal.override_reason": _REASON,
    "handoff.Deal.source_system": NotPersonal("the name of a sending system"),
    "handoff.Deal.external_id": _ID_IN_SENDER,
    "handoff.DealContact.role": _CHOICE,
    "handoff.SaleEvent.kind": _CHOICE,
    "handoff.SaleEvent.source_system": NotPersonal("the name of a sending system"),
    "handoff.SaleEvent.external_id": _ID_IN_SENDER,
    "handoff.ContributionTarget.period": _RULES,
    # --- reports ----------------------------------------------------------------------
    "reports.AttributionRun.status": _CHOICE,
    "reports.AttributionRun.trigger": _CHOICE,
    "reports.AttributionRun.model_names": _CHOICE,
    "reports.AttributionRun.models_unavailable": NotPersonal(
        "why a model could not be computed: model and channel names, counts"
    ),
    "reports.AttributionRun.unallocated": NotPersonal("credit amounts by channel"),
    "reports.AttributionRun.input_digest": _HASH,
    "reports.AttributionRun.error": NotPersonal("why a run failed, from the engine"),
    "reports.AttributionCredit.model": _CHOICE,
    "reports.AttributionCredit.team": _CHOICE,
    "reports.AttributionRunPartition.result": NotPersonal(
        "a partition's credit sums by model, day, channel and campaign"
    ),
    "reports.AttributionDaily.model": _CHOICE,
    "reports.AttributionDaily.team": _CHOICE,
    # --- the buyer's side -------------------------------------------------------------
    "buyers.BuyerForm.slug": _RULES,
    "buyers.BuyerForm.title": _RULES,
    "buyers.BuyerForm.intro": _RULES,
    "buyers.BuyerForm.consents": _RULES,
    "buyers.BuyerForm.disclosures": _RULES,
    "buyers.BuyerForm.purpose": _CHOICE,
    "buyers.FormSubmission.page_url": Personal(
        Erasure.EMPTIED, "emptied (buyers.services): a page's address can name the person"
    ),
    "buyers.FormSubmission.referrer": Personal(Erasure.EMPTIED, "emptied (buyers.services)"),
    "buyers.FormSubmission.utm": Personal(
        Erasure.EMPTIED, "emptied (buyers.services): utm_term can be what they searched for"
    ),
    "buyers.FormSubmission.click_ids": Personal(
        Erasure.EMPTIED, "emptied (buyers.services): an ad platform's id of the click"
    ),
    "buyers.Visit.page_url": Personal(
        Erasure.FORGOTTEN, "a consented visit: deleted with the person's visitor id"
    ),
    "buyers.Visit.referrer": Personal(
        Erasure.FORGOTTEN, "a consented visit: deleted with the person's visitor id"
    ),
    "buyers.Visit.utm": Personal(
        Erasure.FORGOTTEN, "a consented visit: deleted with the person's visitor id"
    ),
    "buyers.Visit.click_ids": Personal(
        Erasure.FORGOTTEN, "a consented visit: deleted with the person's visitor id"
    ),
    "buyers.DailyVisitCount.path": NotPersonal(
        "a page's path (no query string), counted per day with no visitor, cookie or address"
    ),
    "buyers.DailyVisitCount.utm_campaign": NotPersonal("a campaign's UTM name, counted per day"),
    "buyers.PortalLink.token_hash": Personal(
        Erasure.DELETED, "a SHA-256 of a sign-in link sent to the person: the row is deleted"
    ),
    "buyers.Visitor.token_hash": Personal(
        Erasure.DELETED, "the person's browser's visitor id (a SHA-256): the row is deleted"
    ),
    # --- webhooks ---------------------------------------------------------------------
    "webhooks.Endpoint.url": NotPersonal("the address of a receiving system"),
    "webhooks.Endpoint.event_types": _CHOICE,
    "webhooks.Endpoint.audience": _CHOICE,
    "webhooks.Endpoint.secret": NotPersonal("a receiving system's signing secret"),
    "webhooks.Endpoint.previous_secret": NotPersonal("a receiving system's signing secret"),
    "webhooks.Endpoint.disabled_reason": NotPersonal("why sending stopped, written by the code"),
    "webhooks.Message.id": NotPersonal("a random message id"),
    "webhooks.Message.event_type": _CHOICE,
    "webhooks.Message.data": NotPersonal(
        "an event's ids and choices (webhooks.events); its personal values are in personal"
    ),
    "webhooks.Message.personal": Personal(
        Erasure.EMPTIED,
        "set to NULL in every message about the person, sent or pending "
        "(webhooks.receivers); a pending one then goes out with ids only",
    ),
    "webhooks.Message.status": _CHOICE,
    "webhooks.MessageRange.events": NotPersonal(
        "which ledger actions an endpoint hears of, as which event types"
    ),
    "webhooks.Attempt.status": _CHOICE,
    "webhooks.Attempt.response_excerpt": NotPersonal(
        "the start of what a receiving system answered to a delivery"
    ),
    "webhooks.Attempt.error": NotPersonal("why a delivery failed: a network or HTTP error"),
    "reports.PeopleRefresh.time_zone": NotPersonal("the reporting time zone's name"),
    "reports.SalesDaily.source": _CHOICE,
    "reports.SalesDaily.kind": _CHOICE,
}

# Apps other than the project's, as a whole (by app label).
NOT_PERSONAL_APPS: dict[str, str] = {
    "admin": "the admin's change log; the admin shows people read-only, so it logs no change",
    "auth": "staff accounts and permissions",
    "contenttypes": "model names",
    "sessions": "signed-in staff's sessions",
    "knox": "digests of API tokens of staff and integrations",
    "axes": "staff's login attempts",
}
