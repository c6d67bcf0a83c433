"""How this app tells the apps above it what became of people: the one mechanism.

``contacts`` sits below ``handoff`` and ``events`` and imports neither
(``docs/layers.md``; the import contract in ``pyproject.toml`` holds it to
that). An app above that keeps records about people connects a receiver to
these signals in its ``AppConfig.ready``. Each write signal is sent by a
service in ``contacts.services`` after its write, inside its transaction with
the ledger lock held: a receiver's writes join that transaction, and an error
in a receiver undoes the whole write. Every signal is sent with
``sender=Contact``.
"""

from django.dispatch import Signal

# ``contact_ids``, ``actor``: touches, consents or disclosures of these people
# changed (scores and qualification follow them).
contacts_changed = Signal()

# ``disclosure_ids``: journey stages just recorded (a say-so may hand the person off).
journey_stages_recorded = Signal()

# ``merged``, ``kept``, ``actor``: a merge moves what an app holds about the
# merged person to the kept one; a receiver answers ``{what: count moved}``,
# which the merge's ledger entry reports.
contact_merging = Signal()

# ``contact_ids``: an erasure; an app empties the personal values it holds
# about these people.
contacts_erasing = Signal()

# ``user``, ``contact_ids``: a read, not a write. A receiver answers the
# ``(subject_type, subject_id)`` pairs of subjects the reader may not know of,
# whose entries stay out of that reader's timeline of these people.
timeline_hidden_subjects = Signal()
