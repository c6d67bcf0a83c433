"""Writes on people: every one checks its rule, writes, and appends to the ledger atomically.

Personal values that a ledger entry carries are sealed with the person's key
(``contacts.sealing``) so that erasure can make them unreadable without
touching the ledger.

The writes live in modules by concept (``people``, ``consents``, ``lifecycle`` for merge,
erasure and export, ``touches`` for channels, campaigns and touches); every public name
is here too, so callers import from ``contacts.services``.
"""

from __future__ import annotations

from .checks import (
    contacts_changed,
    require_living,
)
from .consents import (
    ConsentInput,
    DisclosureInput,
    consent_ledger_payload,
    consent_record,
    disclosure_ledger_payload,
    disclosure_record,
    disclosure_withdraw,
    person_answers_record,
)
from .lifecycle import (
    contact_erase,
    contact_merge,
    contact_subject_access_export,
)
from .organizations import (
    FREE_MAIL_DOMAINS,
    contact_organization_move,
    domain_is_free_mail,
    email_domain,
    organization_for_email,
    organization_ids_for_emails,
)
from .people import (
    OrganizationInput,
    contact_create,
    contact_ledger_payload,
    domain_normalize,
    email_normalize,
    organization_get_or_create,
    organization_ledger_payload,
)
from .touches import (
    campaign_create,
    channel_create,
    channel_update,
    touch_ledger_payload,
    touch_record,
)

__all__ = [
    "FREE_MAIL_DOMAINS",
    "ConsentInput",
    "DisclosureInput",
    "OrganizationInput",
    "campaign_create",
    "channel_create",
    "channel_update",
    "consent_ledger_payload",
    "consent_record",
    "contact_create",
    "contact_erase",
    "contact_ledger_payload",
    "contact_merge",
    "contact_organization_move",
    "contact_subject_access_export",
    "contacts_changed",
    "disclosure_ledger_payload",
    "disclosure_record",
    "disclosure_withdraw",
    "domain_is_free_mail",
    "domain_normalize",
    "email_domain",
    "email_normalize",
    "organization_for_email",
    "organization_get_or_create",
    "organization_ids_for_emails",
    "organization_ledger_payload",
    "person_answers_record",
    "require_living",
    "touch_ledger_payload",
    "touch_record",
]
