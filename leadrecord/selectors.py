"""Reads on the ledger."""

from django.db.models import QuerySet

from .models import LedgerEntry


def ledger_entries_latest_first() -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.order_by("-seq")
