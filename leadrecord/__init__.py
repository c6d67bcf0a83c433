"""LeadRecord project package: settings, URLs, the Celery app, the ledger, roles and API plumbing."""

from .celery import app as celery_app

__all__ = ["celery_app"]
