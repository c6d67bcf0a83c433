from collections.abc import Callable
from typing import Any

import pytest

from contacts import services
from contacts.models import Contact, Disclosure
from leadrecord.ledger import Actor

from ..factories import contact_make

SYSTEM = Actor.system("test")


@pytest.fixture
def contact(db: None) -> Contact:
    return contact_make(
        email="Ada.Lovelace@Example.com",
        first_name="Ada",
        last_name="Lovelace",
        organization="example.com",
    )


@pytest.fixture
def disclose(db: None) -> Callable[..., Disclosure]:
    """Record a disclosure with sensible defaults: ``disclose(contact, audience="sales")``."""

    def make(contact: Contact, **kwargs: Any) -> Disclosure:
        fields: dict[str, Any] = {
            "key": "budget",
            "value": "about 50k",
            "audience": "all",
            "purpose": "qualification",
            "source": "form",
        }
        fields.update(kwargs)
        return services.disclosure_record(contact=contact, actor=SYSTEM, **fields)

    return make
