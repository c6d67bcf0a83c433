"""The Celery app. Configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadrecord.settings")

app = Celery("leadrecord")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
