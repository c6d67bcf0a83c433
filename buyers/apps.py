from django.apps import AppConfig


class BuyersConfig(AppConfig):
    name = "buyers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # What this app keeps about a person follows them through merges and
        # erasure, which happen in the contacts app (contacts.signals).
        from . import receivers  # noqa: F401
