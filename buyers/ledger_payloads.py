"""What a form submission's ledger entry says, for both of its writers (the services'
path and a new person's post in a few statements, ``buyers.bulk``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contacts.sealing import seal

if TYPE_CHECKING:
    from .services import Arrival


def form_submission_ledger_payload(
    *,
    form_slug: str,
    touch_id: int,
    campaign_id: int | None,
    shared_device: bool,
    created_person: bool,
    arrival: Arrival,
    key: bytes,
    contact_id: int,
) -> dict[str, Any]:
    return {
        "form": form_slug,
        "touch": touch_id,
        "campaign": campaign_id,
        "shared_device": shared_device,
        "created_person": created_person,
        # Where it came from can name the person (an address, a click id).
        **seal(
            key=key,
            contact_id=contact_id,
            values={
                "page_url": arrival.page_url,
                "referrer": arrival.referrer,
                "utm": arrival.utm,
                "click_ids": arrival.click_ids,
            },
        ),
    }
