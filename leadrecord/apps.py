from django.apps import AppConfig


class LeadRecordConfig(AppConfig):
    name = "leadrecord"
    verbose_name = "LeadRecord"
    default_auto_field = "django.db.models.BigAutoField"
