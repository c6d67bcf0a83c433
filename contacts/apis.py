"""The contacts API (API.md: contacts, consents, disclosures, timeline, merge, erase)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadrecord.api_fields import AwareDateTimeField, IdField, OccurredAtField
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.pagination import Pagination
from leadrecord.permissions import roles_allowed
from leadrecord.roles import Role

from . import selectors, services
from .models import (
    CONSENT_SOURCE_MAX_LENGTH,
    DISCLOSURE_KEY_MAX_LENGTH,
    DISCLOSURE_VALUE_MAX_LENGTH,
    DOMAIN_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    NAME_MAX_LENGTH,
    NOTICE_VERSION_MAX_LENGTH,
    ORGANIZATION_NAME_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Audience,
    Consent,
    ConsentPurpose,
    Contact,
    Disclosure,
    DisclosurePurpose,
    DisclosureSource,
    JourneyStage,
    Organization,
)

CONTACT_WRITERS = (Role.MARKETER, Role.SALES_REP, Role.MANAGER, Role.INTEGRATION)
ContactPermission = roles_allowed(read=selectors.CONTACT_READ_ROLES, write=CONTACT_WRITERS)
MergePermission = roles_allowed(write=(Role.MARKETER, Role.SALES_REP, Role.MANAGER))
PrivacyOfficerPermission = roles_allowed(read=[Role.PRIVACY_OFFICER], write=[Role.PRIVACY_OFFICER])

DISCLOSURE_KEY_PATTERN = r"^[a-z][a-z0-9_]*$"


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
        r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?$",
        max_length=DOMAIN_MAX_LENGTH,
        required=False,
        allow_blank=True,
        error_messages={"invalid": "Enter a domain name such as example.com."},
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


class ContactListCreateApi(ListAPIView):
    """Contacts: list with search and filters, or create one (deduplicated by email)."""

    permission_classes = [ContactPermission]
    pagination_class = Pagination
    filterset_class = ContactFilter
    serializer_class = ContactSummarySerializer

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=EMAIL_MAX_LENGTH)
        first_name = serializers.CharField(
            max_length=NAME_MAX_LENGTH, required=False, allow_blank=True, default=""
        )
        last_name = serializers.CharField(
            max_length=NAME_MAX_LENGTH, required=False, allow_blank=True, default=""
        )
        title = serializers.CharField(
            max_length=TITLE_MAX_LENGTH, required=False, allow_blank=True, default=""
        )
        organization = OrganizationInputSerializer(required=False, allow_null=True)
        occurred_at = OccurredAtField()

    def get_queryset(self) -> QuerySet[Contact]:
        return selectors.contacts_for(self.request.user).order_by("-created_at", "-id")

    @extend_schema(
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
            first_name=data["first_name"],
            last_name=data["last_name"],
            title=data["title"],
            organization=services.OrganizationInput(**organization) if organization else None,
            actor=Actor.of(request.user),
            occurred_at=data.get("occurred_at"),
        )
        body = contact_detail_data(request, contact)
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ContactDetailApi(APIView):
    permission_classes = [ContactPermission]

    @extend_schema(responses=ContactDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        return Response(contact_detail_data(request, contact))


class ContactTimelineApi(ListAPIView):
    """The contact's ledger entries, oldest first, without values outside the caller's audience."""

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
        return selectors.contact_timeline_entries(contact)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        items = selectors.timeline_items(request.user, page or [])
        return self.get_paginated_response(self.OutputSerializer(items, many=True).data)


class ContactConsentsApi(ListAPIView):
    """A contact's consent history (every grant and withdrawal), or record one."""

    permission_classes = [ContactPermission]
    pagination_class = Pagination

    class InputSerializer(serializers.Serializer):
        purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
        granted = serializers.BooleanField()
        source = serializers.CharField(max_length=CONSENT_SOURCE_MAX_LENGTH)  # type: ignore[assignment]
        notice_version = serializers.CharField(
            max_length=NOTICE_VERSION_MAX_LENGTH, required=False, allow_blank=True, default=""
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

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        consent = services.consent_record(
            contact=contact, actor=Actor.of(request.user), **serializer.validated_data
        )
        return Response(self.OutputSerializer(consent).data, status=status.HTTP_201_CREATED)


class ContactDisclosuresApi(ListAPIView):
    """The contact's disclosures the caller may see, or record a new one."""

    permission_classes = [ContactPermission]
    pagination_class = Pagination
    serializer_class = DisclosureSerializer
    queryset = Disclosure.objects.none()  # for the schema; get_queryset reads the contact's

    class InputSerializer(serializers.Serializer):
        key = serializers.RegexField(
            DISCLOSURE_KEY_PATTERN,
            max_length=DISCLOSURE_KEY_MAX_LENGTH,
            error_messages={
                "invalid": "A key is lower-case letters, digits and underscores, e.g. budget."
            },
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

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
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

    @extend_schema(request=None, responses=OutputSerializer)
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
        reason = serializers.CharField(
            max_length=1000, required=False, allow_blank=True, default=""
        )

    @extend_schema(request=InputSerializer, responses=ContactDetailSerializer)
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
            keep=keep, merge=merge, actor=Actor.of(request.user), reason=data["reason"]
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

    permission_classes = [PrivacyOfficerPermission]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            max_length=1000, required=False, allow_blank=True, default=""
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        erased_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        erased = services.contact_erase(
            contact=contact,
            actor=Actor.of(request.user),
            reason=serializer.validated_data["reason"],
        )
        return Response(self.OutputSerializer(erased).data)


class ContactExportApi(APIView):
    """The subject-access export (privacy officer): everything held about the person."""

    permission_classes = [PrivacyOfficerPermission]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        data = services.contact_subject_access_export(contact=contact, actor=Actor.of(request.user))
        return Response(data)
