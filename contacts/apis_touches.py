"""Channels, campaigns and touches in the API (docs/api.md: channels, campaigns, touches)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.encoding import smart_str
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

from leadrecord import api_examples
from leadrecord.api_fields import IdField, IdFilter, OccurredAtField
from leadrecord.errors import InvalidInput
from leadrecord.ledger import Actor
from leadrecord.pagination import Pagination
from leadrecord.permissions import roles_allowed
from leadrecord.roles import Role

from . import rules, selectors, services
from .apis import (
    ContactPermission,
    living_contact_or_field_error,
)
from .models import (
    CAMPAIGN_NAME_MAX_LENGTH,
    CHANNEL_KEY_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    EXTERNAL_ID_MAX_LENGTH,
    SOURCE_SYSTEM_MAX_LENGTH,
    UTM_MAX_LENGTH,
    Campaign,
    Channel,
    Team,
    Touch,
    TouchKind,
)

# --- channels, campaigns, touches ------------------------------------------------

ChannelPermission = roles_allowed(read=selectors.CONTACT_READ_ROLES, write=[Role.MANAGER])
CampaignPermission = roles_allowed(
    read=selectors.CONTACT_READ_ROLES, write=[Role.MARKETER, Role.MANAGER]
)
TouchPermission = ContactPermission


class ChannelSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=CHANNEL_KEY_MAX_LENGTH)
    team = serializers.ChoiceField(choices=Team.choices)
    active = serializers.BooleanField(default=True)


class ChannelListCreateApi(APIView):
    """The channels and their teams (a short list, not paginated); managers add channels."""

    permission_classes = [ChannelPermission]

    @extend_schema(responses=ChannelSerializer(many=True), examples=api_examples.CHANNELS_LIST)
    def get(self, request: Request) -> Response:
        return Response(ChannelSerializer(selectors.channels_all(), many=True).data)

    @extend_schema(
        request=ChannelSerializer,
        responses={201: ChannelSerializer},
        examples=api_examples.CHANNELS_CREATE,
    )
    def post(self, request: Request) -> Response:
        serializer = ChannelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = services.channel_create(
            key=serializer.validated_data["key"],
            team=serializer.validated_data["team"],
            actor=Actor.of(request.user),
        )
        return Response(ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailApi(APIView):
    """Change a channel's team, or retire it (``active: false``); managers only."""

    permission_classes = [ChannelPermission]

    class InputSerializer(serializers.Serializer):
        team = serializers.ChoiceField(choices=Team.choices, required=False)
        active = serializers.BooleanField(required=False)

    @extend_schema(
        request=InputSerializer, responses=ChannelSerializer, examples=api_examples.CHANNEL_UPDATE
    )
    def patch(self, request: Request, key: str) -> Response:
        channel = get_object_or_404(Channel, key=key)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = services.channel_update(
            channel=channel,
            team=serializer.validated_data.get("team", channel.team),
            active=serializer.validated_data.get("active", channel.active),
            actor=Actor.of(request.user),
        )
        return Response(ChannelSerializer(channel).data)


class MoneyField(serializers.DecimalField):
    """A non-negative amount in the reporting currency, as a decimal string.

    Parsed by ``rules.money_parse``, as the bulk events path parses amounts, with
    REST framework's own message for each refusal.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", settings.MONEY_MAX_DIGITS)
        kwargs.setdefault("decimal_places", settings.MONEY_DECIMAL_PLACES)
        kwargs.setdefault("min_value", Decimal("0"))
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        try:
            value = rules.money_parse(smart_str(data).strip())
        except InvalidInput as error:
            self.fail(
                error.code,
                max_digits=self.max_digits,
                max_decimal_places=self.decimal_places,
                max_whole_digits=self.max_whole_digits,
                min_value=self.min_value,
            )
        return self.quantize(value)


def currency_check(data: Mapping[str, Any]) -> None:
    currency = data.get("currency")
    if currency is not None and currency != settings.LEADRECORD_CURRENCY:
        raise serializers.ValidationError(
            {
                "currency": [
                    f"Amounts are in {settings.LEADRECORD_CURRENCY}; other currencies are not "
                    "accepted until exchange rates exist."
                ]
            },
            code="unsupported_currency",
        )


@extend_schema_view(get=extend_schema(examples=api_examples.CAMPAIGNS_LIST))
class CampaignListCreateApi(ListAPIView):
    """Campaigns on a channel, with UTM tags and cost; marketers and managers create them."""

    permission_classes = [CampaignPermission]
    pagination_class = Pagination
    queryset = Campaign.objects.none()

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=CAMPAIGN_NAME_MAX_LENGTH)
        channel = serializers.SlugRelatedField(
            slug_field="key", queryset=Channel.objects.filter(active=True)
        )
        utm_source = serializers.CharField(
            max_length=UTM_MAX_LENGTH, required=False, allow_blank=True
        )
        utm_medium = serializers.CharField(
            max_length=UTM_MAX_LENGTH, required=False, allow_blank=True
        )
        utm_campaign = serializers.CharField(
            max_length=UTM_MAX_LENGTH, required=False, allow_blank=True
        )
        cost = MoneyField(required=False, default=Decimal("0"))
        currency = serializers.CharField(max_length=3, required=False)
        occurred_at = OccurredAtField()

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            currency_check(attrs)
            attrs.pop("currency", None)
            return attrs

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        channel = serializers.CharField(source="channel.key")
        team = serializers.CharField(source="channel.team")
        utm_source = serializers.CharField()
        utm_medium = serializers.CharField()
        utm_campaign = serializers.CharField()
        cost = MoneyField()
        created_at = serializers.DateTimeField()

    serializer_class = OutputSerializer

    def get_queryset(self) -> QuerySet[Campaign]:
        return selectors.campaigns_all()

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
        examples=api_examples.CAMPAIGNS_CREATE,
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = services.campaign_create(
            actor=Actor.of(request.user), **serializer.validated_data
        )
        return Response(self.OutputSerializer(campaign).data, status=status.HTTP_201_CREATED)


class TouchFilter(django_filters.FilterSet):
    contact = IdFilter(field_name="contact_id")
    channel = django_filters.CharFilter(field_name="channel__key", max_length=40)
    campaign = IdFilter(field_name="campaign_id")

    class Meta:
        model = Touch
        fields = ["contact", "channel", "campaign"]


@extend_schema_view(get=extend_schema(examples=api_examples.TOUCHES_LIST))
class TouchListCreateApi(ListAPIView):
    """Touches: record one (a repeated source_system + external_id answers the first), or list."""

    permission_classes = [TouchPermission]
    pagination_class = Pagination
    filterset_class = TouchFilter
    queryset = Touch.objects.none()

    class InputSerializer(serializers.Serializer):
        contact = IdField(required=False)
        contact_email = serializers.EmailField(max_length=EMAIL_MAX_LENGTH, required=False)
        channel = serializers.SlugRelatedField(
            slug_field="key", queryset=Channel.objects.filter(active=True)
        )
        campaign = serializers.PrimaryKeyRelatedField(
            queryset=Campaign.objects.select_related("channel"), required=False, allow_null=True
        )
        kind = serializers.ChoiceField(choices=TouchKind.choices, default=TouchKind.OTHER)
        occurred_at = OccurredAtField()
        source_system = serializers.CharField(
            max_length=SOURCE_SYSTEM_MAX_LENGTH, required=False, allow_blank=True
        )
        external_id = serializers.CharField(
            max_length=EXTERNAL_ID_MAX_LENGTH, required=False, allow_null=True, default=None
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("contact") and not attrs.get("contact_email"):
                raise serializers.ValidationError(
                    {"contact": ["Give the contact's id or contact_email."]}, code="required"
                )
            if attrs.get("external_id") and not attrs.get("source_system"):
                raise serializers.ValidationError(
                    {"source_system": ["An external_id needs its source_system."]},
                    code="required",
                )
            return attrs

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        contact = serializers.IntegerField(source="contact_id")
        channel = serializers.CharField(source="channel.key")
        campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
        kind = serializers.ChoiceField(choices=TouchKind.choices)
        occurred_at = serializers.DateTimeField()
        recorded_at = serializers.DateTimeField()
        source_system = serializers.CharField()
        external_id = serializers.CharField(allow_null=True)

    serializer_class = OutputSerializer

    def get_queryset(self) -> QuerySet[Touch]:
        return selectors.touches_visible().order_by("-occurred_at", "-id")

    @extend_schema(
        examples=api_examples.TOUCHES_CREATE,
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            200: OpenApiResponse(OutputSerializer, "The external id was known: the first touch."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        actor = Actor.of(request.user)
        if data.get("contact"):
            contact = living_contact_or_field_error(request, data["contact"], "contact")
        else:
            contact, _ = services.contact_create(
                email=data["contact_email"], actor=actor, event_at=data.get("occurred_at")
            )
        touch, created = services.touch_record(
            contact=contact,
            channel=data["channel"],
            campaign=data.get("campaign"),
            kind=data["kind"],
            occurred_at=data.get("occurred_at"),
            source_system=data.get("source_system", ""),
            external_id=data["external_id"],
            actor=actor,
        )
        return Response(
            self.OutputSerializer(touch).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
