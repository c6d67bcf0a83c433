from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ContactsConfig(AppConfig):
    name = "contacts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .channels import channels_ensure

        post_migrate.connect(channels_ensure, sender=self, dispatch_uid="contacts.channels_ensure")
