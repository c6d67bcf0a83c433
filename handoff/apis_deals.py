"""The handoff API's deals, their sale events and source overrides (docs/api.md: deals, sale
events, source overrides)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.apis_touches import MoneyField, currency_check
from contacts.models import Contact, Organization
from leadrecord import api_examples
from leadrecord.api_fields import IdField, IdFilter, OccurredAtField
from leadrecord.errors import InvalidInput
from leadrecord.ledger import Actor
from leadrecord.pagination import Pagination

from . import selectors, services
from .apis import (
    MAX_BUYING_GROUP,
    DealPermission,
    OverridePermission,
    owner_me,
    user_or_field_error,
)
from .models import (
    DEAL_NAME_MAX_LENGTH,
    EXTERNAL_ID_MAX_LENGTH,
    REASON_MAX_LENGTH,
    SOURCE_SYSTEM_MAX_LENGTH,
    BuyingRole,
    Deal,
    DealSource,
    DealState,
    SaleKind,
)

# --- deals ------------------------------------------------------------------


class SaleEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=SaleKind.choices)
    amount = MoneyField()
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    source_system = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)


class DealMemberSerializer(serializers.Serializer):
    contact = serializers.IntegerField(source="contact_id")
    role = serializers.ChoiceField(choices=BuyingRole.choices)
    other_organization = serializers.BooleanField(
        help_text="The person works for another organization than the deal's (allowed, flagged)."
    )


class DealSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    organization = serializers.IntegerField(source="organization_id")
    contacts = DealMemberSerializer(source="members.all", many=True)
    amount = MoneyField()
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    state = serializers.ChoiceField(choices=DealState.choices)
    source = serializers.ChoiceField(choices=DealSource.choices)  # type: ignore[assignment]
    source_reason = serializers.CharField()
    derived_source = serializers.ChoiceField(choices=DealSource.choices)
    overridden = serializers.SerializerMethodField()
    sourcing_handoff = serializers.IntegerField(source="sourcing_handoff_id", allow_null=True)
    influenced = serializers.BooleanField()
    sale_events = SaleEventSerializer(source="sale_events.all", many=True)
    external_id = serializers.CharField(allow_null=True)
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()

    def get_overridden(self, deal: Deal) -> bool:
        return bool(deal.source_override)


class DealMemberInputSerializer(serializers.Serializer):
    contact = IdField()
    role = serializers.ChoiceField(choices=BuyingRole.choices, default=BuyingRole.OTHER)


class DealFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=DealState.choices)
    organization = IdFilter(field_name="organization_id")
    source = django_filters.ChoiceFilter(choices=DealSource.choices, method="filter_source")

    class Meta:
        model = Deal
        fields = ["state", "organization", "source"]

    def filter_source(self, queryset: QuerySet[Deal], name: str, value: str) -> QuerySet[Deal]:
        return queryset.filter(
            Q(source_override=value) | Q(source_override="", derived_source=value)
        )


@extend_schema_view(get=extend_schema(examples=api_examples.DEALS_LIST))
class DealListCreateApi(ListAPIView):
    """Deals with their buying group; the source is derived from the record, not given."""

    permission_classes = [DealPermission]
    pagination_class = Pagination
    serializer_class = DealSerializer
    filterset_class = DealFilter
    queryset = Deal.objects.none()

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=DEAL_NAME_MAX_LENGTH)
        organization = IdField()
        contacts = DealMemberInputSerializer(
            many=True,
            required=False,
            max_length=MAX_BUYING_GROUP,  # type: ignore[call-arg]
        )
        amount = MoneyField()
        currency = serializers.CharField(max_length=3, required=False)
        owner = IdField(required=False, allow_null=True)
        source_system = serializers.CharField(
            max_length=SOURCE_SYSTEM_MAX_LENGTH, required=False, allow_blank=True
        )
        external_id = serializers.CharField(
            max_length=EXTERNAL_ID_MAX_LENGTH, required=False, allow_null=True, default=None
        )
        occurred_at = OccurredAtField()

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            currency_check(attrs)
            attrs.pop("currency", None)
            return attrs

    def get_queryset(self) -> QuerySet[Deal]:
        return owner_me(selectors.deals_all(), self.request, "owner")

    @extend_schema(
        examples=api_examples.DEALS_CREATE,
        request=InputSerializer,
        responses={
            201: DealSerializer,
            200: OpenApiResponse(DealSerializer, "The external id was known: the first deal."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        organization = Organization.objects.filter(pk=data["organization"]).first()
        if organization is None:
            raise InvalidInput(
                "does_not_exist",
                f"No organization {data['organization']}.",
                attr="organization",
            )
        members_data = data.get("contacts", [])
        contacts = Contact.objects.in_bulk([m["contact"] for m in members_data])
        unknown = [m["contact"] for m in members_data if m["contact"] not in contacts]
        if unknown:
            raise InvalidInput(
                "does_not_exist",
                f"No contact {', '.join(str(pk) for pk in unknown)}.",
                attr="contacts",
            )
        deal, created = services.deal_create(
            name=data["name"],
            organization=organization,
            members=[services.Member(contacts[m["contact"]], m["role"]) for m in members_data],
            amount=data["amount"],
            owner=user_or_field_error(data.get("owner"), "owner"),
            source_system=data.get("source_system", ""),
            external_id=data["external_id"],
            occurred_at=data.get("occurred_at"),
            actor=Actor.of(request.user),
        )
        deal = selectors.deals_all().get(pk=deal.pk)
        return Response(
            DealSerializer(deal).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DealDetailApi(APIView):
    permission_classes = [DealPermission]

    @extend_schema(responses={200: DealSerializer}, examples=api_examples.DEAL_DETAIL)
    def get(self, request: Request, pk: int) -> Response:
        return Response(DealSerializer(get_object_or_404(selectors.deals_all(), pk=pk)).data)


class SaleEventCreateApi(APIView):
    """Record won, lost, expansion, renewal or churn; the deal's state follows."""

    permission_classes = [DealPermission]

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=SaleKind.choices)
        amount = MoneyField(required=False, allow_null=True, help_text="Required but for lost.")
        currency = serializers.CharField(max_length=3, required=False)
        occurred_at = OccurredAtField()
        source_system = serializers.CharField(
            max_length=SOURCE_SYSTEM_MAX_LENGTH, required=False, allow_blank=True
        )
        external_id = serializers.CharField(
            max_length=EXTERNAL_ID_MAX_LENGTH, required=False, allow_null=True, default=None
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            currency_check(attrs)
            attrs.pop("currency", None)
            return attrs

    @extend_schema(
        examples=api_examples.SALE_EVENTS_CREATE,
        request=InputSerializer,
        responses={
            201: SaleEventSerializer,
            200: OpenApiResponse(SaleEventSerializer, "The external id was known."),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        deal = get_object_or_404(Deal, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event, created = services.sale_event_record(
            deal=deal,
            kind=data["kind"],
            amount=data.get("amount"),
            occurred_at=data.get("occurred_at"),
            source_system=data.get("source_system", ""),
            external_id=data["external_id"],
            actor=Actor.of(request.user),
        )
        return Response(
            SaleEventSerializer(event).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DealOverrideSourceApi(APIView):
    """Set the source by hand, with a reason; the derived source stays on the deal."""

    permission_classes = [OverridePermission]

    class InputSerializer(serializers.Serializer):
        source = serializers.ChoiceField(choices=DealSource.choices)  # type: ignore[assignment]
        reason = serializers.CharField(max_length=REASON_MAX_LENGTH)

    @extend_schema(
        request=InputSerializer,
        responses={200: DealSerializer},
        examples=api_examples.DEAL_OVERRIDE,
    )
    def post(self, request: Request, pk: int) -> Response:
        deal = get_object_or_404(Deal, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.deal_source_override(
            deal=deal,
            source=serializer.validated_data["source"],
            reason=serializer.validated_data["reason"],
            actor=Actor.of(request.user),
        )
        return Response(DealSerializer(selectors.deals_all().get(pk=deal.pk)).data)
