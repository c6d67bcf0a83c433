"""The contacts API (docs/api.md: contacts, consents, disclosures, timeline, merge, erase):
the contacts and their timeline here, with what the other resources' modules share
(``apis_consents``, ``apis_lifecycle``, ``apis_touches``)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
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
from leadrecord.api_fields import OccurredAtField
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from leadrecord.pagination import Pagination
from leadrecord.permissions import roles_allowed
from leadrecord.roles import Role

from . import rules, selectors, services
from .models import (
    DOMAIN_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    NAME_MAX_LENGTH,
    ORGANIZATION_NAME_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Audience,
    ConsentPurpose,
    Contact,
    DisclosurePurpose,
    DisclosureSource,
    JourneyStage,
    Organization,
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


def living_contact_or_field_error(request: Request, pk: int, attr: str) -> Contact:
    contact = selectors.contacts_for(request.user).filter(pk=pk).first()
    if contact is None:
        raise serializers.ValidationError(
            {attr: [f"No living contact {pk}."]}, code="does_not_exist"
        )
    return contact
