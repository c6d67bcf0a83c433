"""``POST events/`` (docs/api.md): the view over ``events.ingest``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.apis import CONTACT_WRITERS
from leadrecord import api_examples
from leadrecord.errors import Unprocessable
from leadrecord.ledger import Actor
from leadrecord.openapi import RuleErrorResponseSerializer
from leadrecord.permissions import roles_allowed

from . import ingest

EventsPermission = roles_allowed(write=CONTACT_WRITERS)


class EventsApi(APIView):
    """Up to 1,000 events per request, stored once each; see docs/api.md "POST events/"."""

    permission_classes = [EventsPermission]

    class InputSerializer(serializers.Serializer):
        events = serializers.ListField(min_length=1, max_length=ingest.MAX_EVENTS)

    class ResultSerializer(serializers.Serializer):
        external_id = serializers.CharField(allow_null=True)
        status = serializers.ChoiceField(choices=["created", "duplicate", "rejected"])
        id = serializers.IntegerField(allow_null=True)
        errors = serializers.ListField(child=serializers.DictField())  # type: ignore[assignment]

    class OutputSerializer(serializers.Serializer):
        created = serializers.IntegerField()
        duplicate = serializers.IntegerField()
        rejected = serializers.IntegerField()
        results = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        examples=api_examples.EVENTS,
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            422: OpenApiResponse(
                RuleErrorResponseSerializer,
                "This Idempotency-Key came with a different body before.",
            ),
        },
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Replays the first answer for the same body (24 hours); "
                "another body with the same key is a 422.",
            )
        ],
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= ingest.IDEMPOTENCY_KEY_MAX_LENGTH):
            raise serializers.ValidationError(
                {"Idempotency-Key": ["Give 1 to 255 characters."]}, code="invalid"
            )
        if key is not None and "\x00" in key:  # the key is stored; PostgreSQL text holds no NUL
            raise serializers.ValidationError(
                {"Idempotency-Key": ["Null characters are not allowed."]},
                code="null_characters_not_allowed",
            )
        try:
            events = ingest.batch_check(request.data)
        except ingest.BatchRefused as refusal:
            raise serializers.ValidationError(
                {refusal.attr or "non_field_errors": [refusal.detail]}, code="invalid"
            ) from refusal
        try:
            answer = ingest.events_ingest(
                events=events,
                actor=Actor.of(request.user),
                idempotency_key=key,
                fingerprint=ingest.request_fingerprint(request.data) if key else "",
            )
        except ingest.IdempotencyKeyReused as reuse:
            raise Unprocessable(
                "idempotency_key_reused", "This Idempotency-Key came with a different body before."
            ) from reuse
        response = Response(answer.body)
        if answer.replayed:
            response["Idempotent-Replayed"] = "true"
        return response
