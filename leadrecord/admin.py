"""API tokens in the admin: listed without their keys, revoked through the service.

A key is shown once, by ``manage.py issue_token``, so the admin cannot add a
token or show one (knox's own admin would print the new key in a message and
write no ledger entry). Deleting is revoking, through ``tokens_revoke``.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from knox.models import AuthToken

from .ledger import Actor
from .services import tokens_revoke

admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "created", "expiry", "expired"]
    list_filter = ["expiry"]
    search_fields = ["user__username"]
    fields = readonly_fields = ("user", "created", "expiry")
    ordering = ["user__username", "-created"]

    @admin.display(boolean=True)
    def expired(self, token: AuthToken) -> bool:
        return token.expiry is not None and token.expiry <= timezone.now()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: AuthToken) -> None:
        tokens_revoke(tokens=AuthToken.objects.filter(pk=obj.pk), actor=Actor.of(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AuthToken]) -> None:
        tokens_revoke(tokens=queryset, actor=Actor.of(request.user))
