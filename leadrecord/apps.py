from django.apps import AppConfig
from django.core.signals import request_finished
from django.db.models.signals import post_migrate


class LeadRecordConfig(AppConfig):
    name = "leadrecord"
    verbose_name = "LeadRecord"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .periodic import periodic_after_request
        from .roles import roles_ensure
        from .stored_dates import stored_dates_tolerate

        stored_dates_tolerate()
        post_migrate.connect(roles_ensure, sender=self, dispatch_uid="leadrecord.roles_ensure")
        # With no broker, the web process itself runs the due periodic jobs.
        request_finished.connect(periodic_after_request, dispatch_uid="leadrecord.periodic")
