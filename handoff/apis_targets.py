"""The handoff API's contribution targets (docs/api.md: targets)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from leadrecord import api_examples
from leadrecord.ledger import Actor
from leadrecord.pagination import Pagination

from . import selectors, services
from .apis import RulesPermission
from .models import ContributionTarget

# --- targets ----------------------------------------------------------------


class TargetSerializer(serializers.Serializer):
    period = serializers.CharField()
    marketing_pipeline_share = serializers.DecimalField(max_digits=5, decimal_places=4)
    updated_at = serializers.DateTimeField()


@extend_schema_view(get=extend_schema(examples=api_examples.TARGETS_LIST))
class TargetListCreateApi(ListAPIView):
    """Marketing's agreed share of pipeline per quarter; setting a period again replaces it."""

    permission_classes = [RulesPermission]
    pagination_class = Pagination
    serializer_class = TargetSerializer
    queryset = ContributionTarget.objects.none()

    class InputSerializer(serializers.Serializer):
        period = serializers.RegexField(
            r"^\d{4}-Q[1-4]$",
            max_length=7,
            error_messages={"invalid": "A period is a quarter like 2026-Q3."},
        )
        marketing_pipeline_share = serializers.DecimalField(
            max_digits=5, decimal_places=4, min_value=Decimal(0), max_value=Decimal(1)
        )

    def get_queryset(self) -> QuerySet[ContributionTarget]:
        return selectors.targets_all()

    @extend_schema(
        examples=api_examples.TARGETS_CREATE,
        request=InputSerializer,
        responses={201: TargetSerializer, 200: OpenApiResponse(TargetSerializer, "Replaced.")},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        target, created = services.target_set(
            period=serializer.validated_data["period"],
            share=serializer.validated_data["marketing_pipeline_share"],
            actor=Actor.of(request.user),
        )
        return Response(
            TargetSerializer(target).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
