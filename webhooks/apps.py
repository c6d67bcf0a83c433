from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every change reaches the ledger (leadrecord.ledger_append*); the outbox rows of
        # the changes some endpoint wants are written beside its entries, in the same
        # transaction. Erasures follow people (contacts.signals).
        from leadrecord.ledger import LedgerWatcher, ledger_watch

        from . import outbox, receivers  # noqa: F401

        ledger_watch(
            LedgerWatcher(
                name="webhooks.outbox",
                actions=outbox.actions_wanted,
                written=outbox.outbox_write,
            )
        )
