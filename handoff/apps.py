from django.apps import AppConfig


class HandoffConfig(AppConfig):
    name = "handoff"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Merges, erasures and new facts about people happen in the contacts app;
        # what this app holds about a person follows them (contacts.signals).
        from . import receivers  # noqa: F401
