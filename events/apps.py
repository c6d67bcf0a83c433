from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Event ingestion: the layer above ``contacts`` and ``handoff`` that composes their rules
    (``docs/layers.md``). It has no models of its own."""

    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registered in every process: the contacts app queues the import run by the
        # task's name (contacts.touch_import.TOUCH_IMPORT_RUN_TASK).
        from . import tasks  # noqa: F401
