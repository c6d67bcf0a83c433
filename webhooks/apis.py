"""The webhook endpoint API (docs/api.md: webhook endpoints, deliveries, replay)."""

from __future__ import annotations

import json

import django_filters
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.models import Audience
from leadrecord.api_fields import AwareDateTimeField
from leadrecord.ledger import Actor
from leadrecord.pagination import Pagination
from leadrecord.permissions import roles_allowed
from leadrecord.roles import Role

from . import api_examples, selectors, services
from .models import Attempt, AttemptStatus, Endpoint, EventType

WebhooksPermission = roles_allowed(
    read=[Role.MANAGER, Role.INTEGRATION], write=[Role.MANAGER, Role.INTEGRATION]
)

_PAYLOADS = "\n\n".join(
    f"`{name}`:\n\n```json\n{json.dumps(body, indent=2)}\n```"
    for name, body in api_examples.EVENT_PAYLOADS.items()
)
EVENTS_DESCRIPTION = (
    "Each delivery is a POST of `{type, timestamp, data}` signed per Standard Webhooks "
    "(`webhook-id`, `webhook-timestamp`, `webhook-signature`: `v1,` and the base64 "
    "HMAC-SHA256 of `id.timestamp.body` under the secret's base64-decoded bytes, one "
    "signature per valid secret). `data` holds ids, `ledger_seq`, the endpoint's "
    "`sequence`, `links.self` and only what the endpoint's audience may see. The body "
    "of each event type:\n\n" + _PAYLOADS
)


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "event_types",
            "audience",
            "enabled",
            "disabled_reason",
            "created_at",
        ]


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="Shown only in this answer.")
    previous_secret_valid_until = serializers.DateTimeField(
        source="previous_secret_until", allow_null=True, required=False
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret", "previous_secret_valid_until"]


def _with_secret(endpoint: Endpoint, secret: str) -> dict[str, object]:
    endpoint.secret = secret
    return dict(EndpointWithSecretSerializer(endpoint).data)


@extend_schema_view(get=extend_schema(examples=api_examples.ENDPOINTS_LIST))
class EndpointListCreateApi(ListAPIView):
    """Webhook endpoints: where other systems hear of changes."""

    permission_classes = [WebhooksPermission]
    pagination_class = Pagination
    serializer_class = EndpointSerializer
    queryset = Endpoint.objects.none()

    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=services.URL_MAX_LENGTH)
        event_types = serializers.ListField(
            child=serializers.ChoiceField(choices=EventType.choices),
            allow_empty=False,
            max_length=len(EventType.values),
        )
        audience = serializers.ChoiceField(choices=Audience.choices)

    def get_queryset(self) -> QuerySet[Endpoint]:
        return selectors.endpoints_all()

    @extend_schema(
        description=EVENTS_DESCRIPTION,
        request=InputSerializer,
        responses={201: EndpointWithSecretSerializer},
        examples=api_examples.ENDPOINTS_CREATE,
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(
            url=serializer.validated_data["url"],
            event_types=serializer.validated_data["event_types"],
            audience=serializer.validated_data["audience"],
            actor=Actor.of(request.user),
        )
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)


class EndpointDetailApi(APIView):
    permission_classes = [WebhooksPermission]

    @extend_schema(responses={200: EndpointSerializer}, examples=api_examples.ENDPOINT_DETAIL)
    def get(self, request: Request, pk: int) -> Response:
        return Response(EndpointSerializer(get_object_or_404(Endpoint, pk=pk)).data)


class EndpointRotateSecretApi(APIView):
    """A new secret; the old one keeps signing (beside the new) for 24 hours."""

    permission_classes = [WebhooksPermission]

    @extend_schema(
        request=None,
        responses={200: EndpointWithSecretSerializer},
        examples=api_examples.ENDPOINT_ROTATE,
    )
    def post(self, request: Request, pk: int) -> Response:
        endpoint = get_object_or_404(Endpoint, pk=pk)
        endpoint, secret = services.endpoint_rotate_secret(
            endpoint=endpoint, actor=Actor.of(request.user)
        )
        return Response(_with_secret(endpoint, secret))


class EndpointEnableApi(APIView):
    """Send to a disabled endpoint again; what waited goes, oldest first."""

    permission_classes = [WebhooksPermission]

    @extend_schema(
        request=None, responses={200: EndpointSerializer}, examples=api_examples.ENDPOINT_ENABLE
    )
    def post(self, request: Request, pk: int) -> Response:
        endpoint = get_object_or_404(Endpoint, pk=pk)
        endpoint = services.endpoint_enable(endpoint=endpoint, actor=Actor.of(request.user))
        return Response(EndpointSerializer(endpoint).data)


class AttemptSerializer(serializers.ModelSerializer):
    message_id = serializers.CharField()
    event_type = serializers.CharField(source="message.event_type")
    sequence = serializers.IntegerField(source="message.sequence")

    class Meta:
        model = Attempt
        fields = [
            "message_id",
            "event_type",
            "sequence",
            "attempted_at",
            "status",
            "response_code",
            "response_excerpt",
            "error",
            "replay",
        ]


class AttemptFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AttemptStatus.choices)

    class Meta:
        model = Attempt
        fields = ["status"]


@extend_schema_view(get=extend_schema(examples=api_examples.DELIVERIES))
class EndpointDeliveriesApi(ListAPIView):
    """The delivery log: every attempt, newest first (``?status=succeeded|failed``)."""

    permission_classes = [WebhooksPermission]
    pagination_class = Pagination
    serializer_class = AttemptSerializer
    filterset_class = AttemptFilter
    queryset = Attempt.objects.none()

    def get_queryset(self) -> QuerySet[Attempt]:
        endpoint = get_object_or_404(Endpoint, pk=self.kwargs["pk"])
        return selectors.endpoint_attempts(endpoint)


class EndpointReplayApi(APIView):
    """Send messages again, with their original ids: by ids, a time range, or every failed one."""

    permission_classes = [WebhooksPermission]

    class InputSerializer(serializers.Serializer):
        message_ids = serializers.ListField(
            child=serializers.CharField(max_length=40),
            required=False,
            max_length=services.REPLAY_IDS_MAX,
        )
        since = AwareDateTimeField(required=False)
        until = AwareDateTimeField(required=False)
        failed = serializers.BooleanField(required=False, default=False)

    class OutputSerializer(serializers.Serializer):
        queued = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer,
        responses={202: OutputSerializer},
        examples=api_examples.REPLAY,
    )
    def post(self, request: Request, pk: int) -> Response:
        endpoint = get_object_or_404(Endpoint, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        queued = services.messages_replay(
            endpoint=endpoint,
            actor=Actor.of(request.user),
            message_ids=data.get("message_ids"),
            since=data.get("since"),
            until=data.get("until"),
            failed=data["failed"],
        )
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)
