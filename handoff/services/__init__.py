"""Writes for rulesets, handoffs, deals, sale events and targets.

Each function runs in one transaction, takes the ledger lock before it reads
what it is about to change (so concurrent callers queue rather than race: two
reps accepting the same handoff at once find it pending one after the other),
and appends its ledger entries in the same transaction. A refusal raises a
domain error (``leadrecord.errors``) before anything is written.

One module per concept; this package re-exports their public names, so
``from handoff.services import handoff_create`` keeps working.
"""

from .contact_hooks import contact_personal_data_erase, contact_references_move
from .deals import (
    Member,
    deal_as_dict,
    deal_create,
    deal_from_handoff_check,
    deal_influenced,
)
from .handoffs import (
    EXPIRE_CHUNK,
    HandoffReadiness,
    SaySo,
    buyer_signal,
    handoff_accept,
    handoff_as_dict,
    handoff_create,
    handoff_readiness,
    handoff_reject,
    handoffs_create_automatic,
    handoffs_expire_due,
    handoffs_open_on_say_so,
)
from .rulesets import (
    MAX_POINT_RULES,
    POINTS_LIMIT,
    RESCORE_CHUNK,
    RULESET_FIELDS,
    contacts_rescore_all,
    points_validate,
    ruleset_activate,
    ruleset_as_dict,
    ruleset_create,
    ruleset_update,
)
from .sales import deal_source_override, sale_event_record
from .sourcing import Sourcing, sourcing_derive
from .targets import target_set, target_years

__all__ = [
    "EXPIRE_CHUNK",
    "MAX_POINT_RULES",
    "POINTS_LIMIT",
    "RESCORE_CHUNK",
    "RULESET_FIELDS",
    "HandoffReadiness",
    "Member",
    "SaySo",
    "Sourcing",
    "buyer_signal",
    "contact_personal_data_erase",
    "contact_references_move",
    "contacts_rescore_all",
    "deal_as_dict",
    "deal_create",
    "deal_from_handoff_check",
    "deal_influenced",
    "deal_source_override",
    "handoff_accept",
    "handoff_as_dict",
    "handoff_create",
    "handoff_readiness",
    "handoff_reject",
    "handoffs_create_automatic",
    "handoffs_expire_due",
    "handoffs_open_on_say_so",
    "points_validate",
    "ruleset_activate",
    "ruleset_as_dict",
    "ruleset_create",
    "ruleset_update",
    "sale_event_record",
    "sourcing_derive",
    "target_set",
    "target_years",
]
