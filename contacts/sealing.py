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
from leadrecord.transaction_marks import (
    transaction_mark_get,
    transaction_mark_set,
    transaction_marks_forget,
)

from .models import ContactKey

SEALED_FIELD = "sealed"
_NONCE_BYTES = 12  # AES-GCM's standard nonce size; random nonces are safe far past our volumes
# One encoder: json.dumps with options makes a new one on every call, four per form post.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def contact_key_new() -> bytes:
    return AESGCM.generate_key(bit_length=256)


# The keys made one by one in the current transaction (leadrecord.transaction_marks):
# a form sent seals values for the person it just created, in three services. At most
# this many are kept: a transaction that makes people one by one by the thousand
# (seeding the demo) would copy ever more of them for nothing.
_CREATED_MARK = "contacts.keys_created"
_CREATED_KEPT = 64


def contact_keys_create(contact_ids: Iterable[int]) -> dict[int, bytes]:
    """Give each new contact its key (one INSERT); returns the keys by contact id."""
    keys = {contact_id: contact_key_new() for contact_id in contact_ids}
    rows_insert(ContactKey, ("contact_id", "key"), list(keys.items()))
    if len(keys) == 1:  # one person made (a form, a page): the bulk paths never ask again
        made: dict[int, bytes] | None = transaction_mark_get(_CREATED_MARK)
        if made is not None and len(made) < _CREATED_KEPT:
            keys_known = {**made, **keys}
        else:
            keys_known = dict(keys)
        transaction_mark_set(_CREATED_MARK, keys_known)
    return keys


def contact_keys(contact_ids: Iterable[int]) -> dict[int, bytes]:
    """The keys that still exist for these contacts (erased ones have none)."""
    wanted = set(contact_ids)
    created: dict[int, bytes] | None = transaction_mark_get(_CREATED_MARK)
    if created is not None and wanted <= created.keys():
        return {contact_id: created[contact_id] for contact_id in wanted}
    rows = ContactKey.objects.filter(contact_id__in=wanted).values_list("contact_id", "key")
    return {contact_id: bytes(key) for contact_id, key in rows}


def contact_keys_forget() -> None:
    """Keys were deleted (an erasure): none made in this transaction is answered from
    memory again."""
    transaction_marks_forget(_CREATED_MARK)


def seal(*, key: bytes, contact_id: int, values: dict[str, Any]) -> dict[str, str]:
    """Encrypt ``values`` for the ledger; returns ``{"sealed": token}``."""
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = _encode(values).encode()
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
