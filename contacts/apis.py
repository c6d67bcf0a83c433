"""The contacts API (API.md: contacts, consents, disclosures, timeline, merge, erase)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadrecord import api_examples
from leadrecord.api_fields import AwareDateTimeField, IdField, IdFilter, OccurredAtField
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.pagination import Pagination
from leadrecord.permissions import roles_allowed
from leadrecord.roles import Role

from . import rules, selectors, services
from .models import (
    CAMPAIGN_NAME_MAX_LENGTH,
    CHANNEL_KEY_MAX_LENGTH,
    CONSENT_SOURCE_MAX_LENGTH,
    DISCLOSURE_KEY_MAX_LENGTH,
    DISCLOSURE_VALUE_MAX_LENGTH,
    DOMAIN_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    EXTERNAL_ID_MAX_LENGTH,
    NAME_MAX_LENGTH,
    NOTICE_VERSION_MAX_LENGTH,
    ORGANIZATION_NAME_MAX_LENGTH,
    SOURCE_SYSTEM_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    UTM_MAX_LENGTH,
    Audience,
    Campaign,
    Channel,
    Consent,
    ConsentPurpose,
    Contact,
    Disclosure,
    DisclosurePurpose,
    DisclosureSource,
    JourneyStage,
    Organization,
    Team,
    Touch,
    TouchKind,
)

CONTACT_WRITERS = (Role.MARKETER, Role.SALES_REP, Role.MANAGER, Role.INTEGRATION)
ContactPermission = roles_allowed(read=selectors.CONTACT_READ_ROLES, write=CONTACT_WRITERS)
MergePermission = roles_allowed(write=(Role.MARKETER, Role.SALES_REP, Role.MANAGER))
PrivacyOfficerPermission = roles_allowed(read=[Role.PRIVACY_OFFICER], write=[Role.PRIVACY_OFFICER])


class ContactErased(APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "This contact has been erased."
    default_code = "contact_erased"


def contact_for_request(request: Request, pk: int) -> Contact:
    """A living contact, else 410 when erased, 404 naming the survivor when merged, or 404."""
    contact = selectors.contacts_for(request.user).filter(pk=pk).first()
    if contact is not None:
        return contact
    gone = Contact.objects.filter(pk=pk).values("merged_into_id", "erased_at").first()
    if gone and gone["erased_at"] is not None:
        raise ContactErased()
    if gone and gone["merged_into_id"] is not None:
        raise NotFound(f"Contact {pk} was merged into contact {gone['merged_into_id']}.")
    raise NotFound("No such contact.")


# --- serializers used by several views ----------------------------------------


class OrganizationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField()
    domain = serializers.CharField()


class ConsentStateSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    granted = serializers.BooleanField()
    source = serializers.CharField()  # type: ignore[assignment]
    notice_version = serializers.CharField()
    occurred_at = serializers.DateTimeField(allow_null=True)


class DisclosureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    value = serializers.CharField()
    audience = serializers.ChoiceField(choices=Audience.choices)
    purpose = serializers.ChoiceField(choices=DisclosurePurpose.choices)
    source = serializers.ChoiceField(choices=DisclosureSource.choices)  # type: ignore[assignment]
    disclosed_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class OrganizationInputSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=ORGANIZATION_NAME_MAX_LENGTH, required=False, allow_blank=True
    )
    domain = serializers.RegexField(
        rules.DOMAIN_PATTERN,
        max_length=DOMAIN_MAX_LENGTH,
        required=False,
        allow_blank=True,
        error_messages={"invalid": rules.DOMAIN_INVALID},
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("name", "").strip() and not attrs.get("domain", "").strip():
            raise serializers.ValidationError("Give the organization's name or domain.")
        return attrs


class ContactSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    title = serializers.CharField()
    organization = OrganizationSerializer(allow_null=True)
    journey_stage = serializers.ChoiceField(choices=JourneyStage.choices, allow_null=True)
    score = serializers.IntegerField()
    qualified = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ContactDetailSerializer(ContactSummarySerializer):
    consents = ConsentStateSerializer(many=True)
    disclosures = DisclosureSerializer(many=True)


def contact_detail_data(request: Request, contact: Contact) -> dict[str, Any]:
    """The detail body: consents and only the disclosures the caller may see."""
    if not hasattr(contact, "journey_stage"):
        contact = contact_for_request(request, contact.pk)
    contact.consents_current = selectors.consents_current(contact)  # type: ignore[attr-defined]
    contact.visible_disclosures = selectors.contact_disclosures_for(request.user, contact)  # type: ignore[attr-defined]
    data = ContactSummarySerializer(contact).data
    data["consents"] = ConsentStateSerializer(contact.consents_current, many=True).data  # type: ignore[attr-defined]
    data["disclosures"] = DisclosureSerializer(contact.visible_disclosures, many=True).data  # type: ignore[attr-defined]
    return data


# --- contacts -----------------------------------------------------------------


class ContactFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=200,
        help_text="Words in name, email, title, organization.",
    )
    organization = django_filters.ModelChoiceFilter(queryset=Organization.objects.all())
    stage = django_filters.ChoiceFilter(
        choices=JourneyStage.choices,
        field_name="journey_stage",
        help_text="The latest journey stage the caller may see.",
    )
    # A choice rather than BooleanFilter, which quietly ignores a value it cannot read.
    qualified = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true"
    )

    class Meta:
        model = Contact
        fields = ["search", "organization", "stage", "qualified"]

    def filter_search(
        self, queryset: QuerySet[Contact], name: str, value: str
    ) -> QuerySet[Contact]:
        return selectors.contacts_search(queryset, value)


@extend_schema_view(get=extend_schema(examples=api_examples.CONTACTS_LIST))
class ContactListCreateApi(ListAPIView):
    """Contacts: list with search and filters, or create one (deduplicated by email)."""

    permission_classes = [ContactPermission]
    pagination_class = Pagination
    filterset_class = ContactFilter
    serializer_class = ContactSummarySerializer

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=EMAIL_MAX_LENGTH)
        first_name = serializers.CharField(
            max_length=NAME_MAX_LENGTH, required=False, allow_blank=True
        )
        last_name = serializers.CharField(
            max_length=NAME_MAX_LENGTH, required=False, allow_blank=True
        )
        title = serializers.CharField(max_length=TITLE_MAX_LENGTH, required=False, allow_blank=True)
        organization = OrganizationInputSerializer(required=False, allow_null=True)
        occurred_at = OccurredAtField()

    def get_queryset(self) -> QuerySet[Contact]:
        return selectors.contacts_for(self.request.user).order_by("-created_at", "-id")

    @extend_schema(
        examples=api_examples.CONTACTS_CREATE,
        request=InputSerializer,
        responses={
            201: ContactDetailSerializer,
            200: OpenApiResponse(ContactDetailSerializer, "The email was known: the contact."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        organization = data.get("organization")
        contact, created = services.contact_create(
            email=data["email"],
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            title=data.get("title", ""),
            organization=services.OrganizationInput(**organization) if organization else None,
            actor=Actor.of(request.user),
            occurred_at=data.get("occurred_at"),
        )
        body = contact_detail_data(request, contact)
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ContactDetailApi(APIView):
    # contact_for_request: an erased contact is 410 Gone.
    schema_error_status_codes = (410,)
    permission_classes = [ContactPermission]

    @extend_schema(responses=ContactDetailSerializer, examples=api_examples.CONTACT_DETAIL_EXAMPLES)
    def get(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        return Response(contact_detail_data(request, contact))


@extend_schema_view(get=extend_schema(examples=api_examples.TIMELINE))
class ContactTimelineApi(ListAPIView):
    """The contact's ledger entries, oldest first, without values outside the caller's audience."""

    # contact_for_request: an erased contact is 410 Gone.
    schema_error_status_codes = (410,)
    permission_classes = [ContactPermission]
    pagination_class = Pagination

    class OutputSerializer(serializers.Serializer):
        seq = serializers.IntegerField()
        occurred_at = serializers.DateTimeField()
        recorded_at = serializers.DateTimeField()
        actor = serializers.CharField()
        action = serializers.CharField()
        summary = serializers.CharField()

    serializer_class = OutputSerializer
    queryset = LedgerEntry.objects.none()  # for the schema; get_queryset reads the contact's

    def get_queryset(self) -> Any:
        contact = contact_for_request(self.request, self.kwargs["pk"])
        return selectors.contact_timeline_entries(contact, self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        items = selectors.timeline_items(request.user, page or [])
        return self.get_paginated_response(self.OutputSerializer(items, many=True).data)


@extend_schema_view(get=extend_schema(examples=api_examples.CONSENTS_LIST))
class ContactConsentsApi(ListAPIView):
    """A contact's consent history (every grant and withdrawal), or record one."""

    # contact_for_request: an erased contact is 410 Gone.
    schema_error_status_codes = (410,)
    permission_classes = [ContactPermission]
    pagination_class = Pagination

    class InputSerializer(serializers.Serializer):
        purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
        granted = serializers.BooleanField()
        source = serializers.CharField(max_length=CONSENT_SOURCE_MAX_LENGTH)  # type: ignore[assignment]
        notice_version = serializers.CharField(
            max_length=NOTICE_VERSION_MAX_LENGTH, required=False, allow_blank=True
        )
        occurred_at = OccurredAtField()

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        contact = serializers.IntegerField(source="contact_id")
        purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
        granted = serializers.BooleanField()
        source = serializers.CharField()  # type: ignore[assignment]
        notice_version = serializers.CharField()
        occurred_at = serializers.DateTimeField()
        recorded_at = serializers.DateTimeField()

    serializer_class = OutputSerializer
    queryset = Consent.objects.none()  # for the schema; get_queryset reads the contact's

    def get_queryset(self) -> Any:
        return selectors.consent_history(contact_for_request(self.request, self.kwargs["pk"]))

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
        examples=api_examples.CONSENTS_CREATE,
    )
    def post(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        consent = services.consent_record(
            contact=contact, actor=Actor.of(request.user), **serializer.validated_data
        )
        return Response(self.OutputSerializer(consent).data, status=status.HTTP_201_CREATED)


@extend_schema_view(get=extend_schema(examples=api_examples.DISCLOSURES_LIST))
class ContactDisclosuresApi(ListAPIView):
    """The contact's disclosures the caller may see, or record a new one."""

    # contact_for_request: an erased contact is 410 Gone.
    schema_error_status_codes = (410,)
    permission_classes = [ContactPermission]
    pagination_class = Pagination
    serializer_class = DisclosureSerializer
    queryset = Disclosure.objects.none()  # for the schema; get_queryset reads the contact's

    class InputSerializer(serializers.Serializer):
        key = serializers.RegexField(
            rules.DISCLOSURE_KEY_PATTERN,
            max_length=DISCLOSURE_KEY_MAX_LENGTH,
            error_messages={"invalid": rules.DISCLOSURE_KEY_INVALID},
        )
        value = serializers.CharField(max_length=DISCLOSURE_VALUE_MAX_LENGTH)
        audience = serializers.ChoiceField(choices=Audience.choices)
        purpose = serializers.ChoiceField(choices=DisclosurePurpose.choices)
        source = serializers.ChoiceField(choices=DisclosureSource.choices)  # type: ignore[assignment]
        expires_at = AwareDateTimeField(required=False, allow_null=True)
        occurred_at = OccurredAtField()

    class OutputSerializer(DisclosureSerializer):
        contact = serializers.IntegerField(source="contact_id")

    def get_queryset(self) -> Any:
        contact = contact_for_request(self.request, self.kwargs["pk"])
        return selectors.contact_disclosures_for(self.request.user, contact)

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer},
        examples=api_examples.DISCLOSURES_CREATE,
    )
    def post(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        disclosure = services.disclosure_record(
            contact=contact, actor=Actor.of(request.user), **serializer.validated_data
        )
        return Response(self.OutputSerializer(disclosure).data, status=status.HTTP_201_CREATED)


class DisclosureWithdrawApi(APIView):
    """Withdraw a disclosure the caller can see; nobody sees it afterwards."""

    permission_classes = [ContactPermission]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        contact = serializers.IntegerField(source="contact_id")
        key = serializers.CharField()
        audience = serializers.CharField()
        withdrawn_at = serializers.DateTimeField()

    @extend_schema(
        request=None, responses=OutputSerializer, examples=api_examples.DISCLOSURE_WITHDRAW
    )
    def post(self, request: Request, pk: int) -> Response:
        disclosure = get_object_or_404(selectors.disclosures_visible_to(request.user), pk=pk)
        disclosure = services.disclosure_withdraw(
            disclosure=disclosure, actor=Actor.of(request.user)
        )
        return Response(self.OutputSerializer(disclosure).data)


class ContactMergeApi(APIView):
    """Merge one contact into another; the merged one's records move to the kept one."""

    permission_classes = [MergePermission]

    class InputSerializer(serializers.Serializer):
        keep = IdField()
        merge = IdField()
        reason = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses=ContactDetailSerializer,
        examples=api_examples.CONTACT_MERGE,
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["keep"] == data["merge"]:
            raise serializers.ValidationError(
                {"merge": ["A contact cannot be merged into itself."]}, code="merge_into_self"
            )
        keep = _living_or_field_error(request, data["keep"], "keep")
        merge = _living_or_field_error(request, data["merge"], "merge")
        kept = services.contact_merge(
            keep=keep, merge=merge, actor=Actor.of(request.user), reason=data.get("reason", "")
        )
        return Response(contact_detail_data(request, kept))


def _living_or_field_error(request: Request, pk: int, attr: str) -> Contact:
    contact = selectors.contacts_for(request.user).filter(pk=pk).first()
    if contact is None:
        raise serializers.ValidationError(
            {attr: [f"No living contact {pk}."]}, code="does_not_exist"
        )
    return contact


class ContactEraseApi(APIView):
    """Erase the person (privacy officer): personal data gone everywhere, counts kept."""

    # contact_for_request: an erased contact is 410 Gone.
    schema_error_status_codes = (410,)
    permission_classes = [PrivacyOfficerPermission]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        erased_at = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer, responses=OutputSerializer, examples=api_examples.CONTACT_ERASE
    )
    def post(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        erased = services.contact_erase(
            contact=contact,
            actor=Actor.of(request.user),
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(self.OutputSerializer(erased).data)


class ContactExportApi(APIView):
    """The subject-access export (privacy officer): everything held about the person."""

    # contact_for_request: an erased contact is 410 Gone.
    schema_error_status_codes = (410,)
    permission_classes = [PrivacyOfficerPermission]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, examples=api_examples.CONTACT_EXPORT)
    def get(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        data = services.contact_subject_access_export(contact=contact, actor=Actor.of(request.user))
        return Response(data)


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
    """A non-negative amount in the reporting currency, as a decimal string."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", settings.MONEY_MAX_DIGITS)
        kwargs.setdefault("decimal_places", settings.MONEY_DECIMAL_PLACES)
        kwargs.setdefault("min_value", Decimal("0"))
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)


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
            contact = _living_or_field_error(request, data["contact"], "contact")
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
