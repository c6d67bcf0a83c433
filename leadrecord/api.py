"""API plumbing shared by every app, and the project-level endpoints."""

from django.db import DatabaseError, connection
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import api_examples
from .models import LedgerEntry
from .permissions import IsAnyRole, roles_allowed
from .roles import Role, user_roles
from .selectors import ledger_entries_latest_first


class HealthView(APIView):
    """The only endpoint open to anonymous callers: is the service up and its database?"""

    authentication_classes = []
    permission_classes = [AllowAny]
    # Load balancers and health checks poll it; no caller to count it against.
    throttle_classes = []

    @extend_schema(
        examples=api_examples.HEALTH,
        auth=[],
        responses={
            200: inline_serializer(
                "Health", {"status": serializers.CharField(), "database": serializers.CharField()}
            )
        },
    )
    def get(self, request: Request) -> Response:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except DatabaseError:
            return Response({"status": "error", "database": "unavailable"}, status=503)
        return Response({"status": "ok", "database": "ok"})


class MeView(APIView):
    """Who the caller is and which roles it holds."""

    permission_classes = [IsAnyRole]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices))

    @extend_schema(responses=OutputSerializer, examples=api_examples.ME)
    def get(self, request: Request) -> Response:
        user = request.user
        data = {"id": user.pk, "username": user.get_username(), "roles": sorted(user_roles(user))}
        return Response(self.OutputSerializer(data).data)


@extend_schema_view(get=extend_schema(examples=api_examples.LEDGER))
class LedgerEntryListView(ListAPIView):
    """The ledger, newest first, without payloads (those belong to timelines)."""

    permission_classes = [roles_allowed(read=[Role.MANAGER, Role.PRIVACY_OFFICER])]

    class OutputSerializer(serializers.Serializer):
        seq = serializers.IntegerField()
        occurred_at = serializers.DateTimeField()
        recorded_at = serializers.DateTimeField()
        actor = serializers.CharField(source="actor_label")
        actor_kind = serializers.CharField()
        action = serializers.CharField()
        subject_type = serializers.CharField()
        subject_id = serializers.CharField()
        reason = serializers.CharField()
        prev_hash = serializers.CharField()
        hash = serializers.CharField()

    serializer_class = OutputSerializer

    def get_queryset(self) -> QuerySet[LedgerEntry]:
        return ledger_entries_latest_first()


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """A 404 under /api/ in the same error format as every other API error."""
    body = {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
    }
    return JsonResponse(body, status=404)
