"""What erasure keeps, and how old data about an erased person is recognised.

Erasure removes a person everywhere (``contacts.services.contact_erase``), but
old data about them can still arrive: an upload made before the erasure and
started after it, a source system sending its backlog. To refuse that data
rather than bring the person back, erasure keeps one thing per email: a keyed
hash (HMAC-SHA256) and the time of the erasure (``ErasedEmail``). Data dated
before that time about an email that is not on record is refused with the code
``contact_erased``; data dated after it is a person who came back.

The key is ``ERASURE_HASH_KEY`` when set, else one derived from ``SECRET_KEY``
(with ``SECRET_KEY_FALLBACKS`` still recognised after a rotation), so the
table cannot be reversed by hashing guessed emails without the key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from leadrecord.errors import Conflict

from .models import Contact, ErasedEmail
from .selectors import erased_email_rows

_HASH_SALT = "leadrecord.contacts.erased-email"
# Names shorter than this are too common as parts of other words to scrub a
# file name on their own (the full name is still matched).
_NAME_PART_MIN_LENGTH = 4

ERASED_DETAIL = (
    "This person has been erased; data dated before their erasure is not recorded again."
)


def _secrets() -> tuple[str, ...]:
    if settings.ERASURE_HASH_KEY:
        return (settings.ERASURE_HASH_KEY,)
    return (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)


@functools.lru_cache(maxsize=8)
def _hash_keys(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    # Derived as Django's salted_hmac derives its keys, once per secret: every
    # new email of a POST events/ batch is hashed, so the derivation is not
    # repeated for each.
    return tuple(hashlib.sha256((_HASH_SALT + secret).encode()).digest() for secret in secrets)


def _digests(keys: tuple[bytes, ...], email_key: str) -> list[str]:
    message = email_key.encode()
    return [hmac.digest(key, message, "sha256").hex() for key in keys]


def email_hashes(email_key: str) -> list[str]:
    """The keyed hashes (HMAC-SHA256) of a normalized email: under the current key first,
    then under older ones."""
    return _digests(_hash_keys(_secrets()), email_key)


def erasures_of(email_keys: Iterable[str]) -> dict[str, datetime]:
    """Normalized email -> the latest erasure of that email, for those ever erased.

    One query, through the hash's unique index; ``POST events/`` asks it once
    per batch for the emails not on record.
    """
    keys = _hash_keys(_secrets())
    by_hash: dict[str, str] = {}
    for email_key in set(email_keys):
        for digest in _digests(keys, email_key):
            by_hash[digest] = email_key
    if not by_hash:
        return {}
    found: dict[str, datetime] = {}
    for digest, erased_at in erased_email_rows(list(by_hash)):
        email_key = by_hash[digest]
        if email_key not in found or erased_at > found[email_key]:
            found[email_key] = erased_at
    return found


def erased_after(email_key: str, moment: datetime) -> bool:
    """Whether this email (not on record) was erased after ``moment``."""
    erased_at = erasures_of([email_key]).get(email_key)
    return erased_at is not None and moment < erased_at


def erasure_refuse(email_key: str, moment: datetime, *, attr: str) -> None:
    """Conflict ``contact_erased`` when data dated ``moment`` is about an erased
    person: it would bring them back."""
    if erased_after(email_key, moment):
        raise Conflict("contact_erased", ERASED_DETAIL, attr=attr)


def erased_emails_record(email_keys: Iterable[str], *, erased_at: datetime) -> int:
    """Keep the keyed hash of each erased email with the time of (the latest) erasure."""
    count = 0
    for email_key in set(email_keys):
        digest = email_hashes(email_key)[0]
        ErasedEmail.objects.update_or_create(email_hash=digest, defaults={"erased_at": erased_at})
        count += 1
    return count


@dataclass(frozen=True)
class ErasedPerson:
    """What identifies the person being erased, read before their rows are emptied; only
    held in memory while erasure scrubs the other copies."""

    emails: frozenset[str]  # lower-cased
    names: tuple[tuple[str, str], ...]  # (first, last) of each contact row

    @classmethod
    def of(cls, contacts: Iterable[Contact]) -> ErasedPerson:
        emails: set[str] = set()
        names: list[tuple[str, str]] = []
        for contact in contacts:
            for email in (contact.email, contact.email_key):
                if email:
                    emails.add(email.strip().lower())
            if contact.first_name or contact.last_name:
                names.append((contact.first_name.strip(), contact.last_name.strip()))
        return cls(frozenset(emails), tuple(names))

    def _full_name_patterns(self) -> list[str]:
        patterns = []
        for first, last in self.names:
            parts = [re.escape(part) for part in f"{first} {last}".split() if part]
            if len(parts) >= 2:
                patterns.append(r"[\W_]*".join(parts))
                patterns.append(r"[\W_]*".join(reversed(parts)))
        return patterns

    def named_in(self, text: str) -> bool:
        """Whether ``text`` holds one of the emails or a full name (case-insensitive)."""
        lowered = text.lower()
        if any(email in lowered for email in self.emails):
            return True
        patterns = self._full_name_patterns()
        return bool(patterns) and re.search("|".join(patterns), text, re.IGNORECASE) is not None

    def named_in_label(self, label: str) -> bool:
        """Like ``named_in``, and also a part of the email or name on its own: for labels
        such as file names (``erin-erasable.csv``, ``erasable_touches.csv``)."""
        if self.named_in(label):
            return True
        lowered = label.lower()
        parts = {email.split("@", 1)[0] for email in self.emails}
        parts |= {part.lower() for first, last in self.names for part in (first, last)}
        return any(len(part) >= _NAME_PART_MIN_LENGTH and part in lowered for part in parts)
