"""LeadRecord project: settings, URLs, the Celery app, the ledger, roles, API plumbing."""

from .celery import app as celery_app

__all__ = ["celery_app"]
