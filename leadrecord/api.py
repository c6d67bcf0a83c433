"""API plumbing shared by every app, and the project-level endpoints."""

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import api_examples
from .checkpoints import ledger_checkpoint_latest
from .models import LedgerEntry
from .permissions import IsAnyRole, roles_allowed
from .roles import Role, user_roles
from .selectors import database_reachable, ledger_entries_latest_first


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
        if not database_reachable():
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


class LedgerCheckpointLatestView(APIView):
    """The latest signed checkpoint of the ledger's head, with the key that signed it.

    Keep copies: `manage.py verify_ledger --checkpoint FILE` (this answer saved as
    FILE works) proves later that the ledger still holds that head, so nothing was
    cut off or rewritten since. Check the public key against one you trust.
    """

    permission_classes = [
        roles_allowed(read=[Role.MANAGER, Role.PRIVACY_OFFICER, Role.INTEGRATION])
    ]

    class OutputSerializer(serializers.Serializer):
        seq = serializers.IntegerField(help_text="The head entry's seq (0: the empty ledger).")
        hash = serializers.CharField(help_text="The head entry's hash (SHA-256, hex).")
        signed_at = serializers.CharField(
            help_text="When it was signed: ISO-8601 UTC, exactly the text that was signed."
        )
        signature = serializers.CharField(
            help_text="Ed25519 signature (base64) of "
            "`leadrecord-ledger-checkpoint:v1:{seq}:{hash}:{signed_at}` (UTF-8)."
        )
        public_key = serializers.CharField(help_text="Ed25519 public key (base64, 32 bytes).")

    @extend_schema(responses=OutputSerializer, examples=api_examples.LEDGER_CHECKPOINT_LATEST)
    def get(self, request: Request) -> Response:
        checkpoint = ledger_checkpoint_latest()
        if checkpoint is None:
            raise NotFound(
                "No checkpoint has been signed yet: set LEDGER_SIGNING_KEY and run "
                "manage.py ledger_checkpoint (Celery beat runs it every 15 minutes)."
            )
        return Response(self.OutputSerializer(checkpoint).data)


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """A 404 under /api/ in the same error format as every other API error."""
    body = {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
    }
    return JsonResponse(body, status=404)
