"""Crypto-shredding: personal values in the ledger are sealed with the person's own key.

The ledger can never change, yet erasure must remove a person's data from
every table. So whatever personal value a ledger entry must carry (an email,
a name, a disclosed value) is stored there only as AES-GCM ciphertext under a
random 256-bit key that belongs to that person and lives in ``ContactKey``.
Erasure deletes the key; the ciphertext stays, the chain still verifies, and
nobody can read the values again.

A sealed payload is ``{"sealed": "<urlsafe base64 of nonce + ciphertext>"}``
merged into an entry's ``before``/``after`` next to its non-personal fields.
The contact's id is authenticated with the ciphertext, so a value cannot be
moved to another person's entry unnoticed.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from leadrecord.bulk import rows_insert

from .models import ContactKey

SEALED_FIELD = "sealed"
_NONCE_BYTES = 12  # AES-GCM's standard nonce size; random nonces are safe far past our volumes


def contact_key_new() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def contact_keys_create(contact_ids: Iterable[int]) -> dict[int, bytes]:
    """Give each new contact its key (one INSERT); returns the keys by contact id."""
    keys = {contact_id: contact_key_new() for contact_id in contact_ids}
    rows_insert(ContactKey, ("contact_id", "key"), list(keys.items()))
    return keys


def contact_keys(contact_ids: Iterable[int]) -> dict[int, bytes]:
    """The keys that still exist for these contacts (erased ones have none)."""
    rows = ContactKey.objects.filter(contact_id__in=set(contact_ids)).values_list(
        "contact_id", "key"
    )
    return {contact_id: bytes(key) for contact_id, key in rows}


def seal(*, key: bytes, contact_id: int, values: dict[str, Any]) -> dict[str, str]:
    """Encrypt ``values`` for the ledger; returns ``{"sealed": token}``."""
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, str(contact_id).encode())
    return {SEALED_FIELD: base64.urlsafe_b64encode(nonce + ciphertext).decode("ascii")}


def unseal(*, key: bytes | None, contact_id: int, payload: Any) -> dict[str, Any]:
    """The sealed values of a ledger payload, or ``{}`` when the key is gone or it has none."""
    if key is None or not isinstance(payload, dict) or SEALED_FIELD not in payload:
        return {}
    try:
        raw = base64.urlsafe_b64decode(payload[SEALED_FIELD])
        plaintext = AESGCM(key).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], str(contact_id).encode()
        )
    except (InvalidTag, ValueError, TypeError):
        return {}
    values = json.loads(plaintext)
    return values if isinstance(values, dict) else {}
