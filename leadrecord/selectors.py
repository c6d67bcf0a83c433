"""Reads on the ledger, and the health check's probe of the database."""

from django.db import DatabaseError, connection
from django.db.models import QuerySet

from .models import LedgerEntry


def ledger_entries_latest_first() -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.order_by("-seq")


def database_reachable() -> bool:
    """Whether the database answers a query: the health check's probe, which must not
    depend on any table."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return False
    return True
