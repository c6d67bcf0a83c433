"""The contacts API's consents and disclosures of a person (docs/api.md: consents, disclosures)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadrecord import api_examples
from leadrecord.api_fields import AwareDateTimeField, OccurredAtField
from leadrecord.ledger import Actor
from leadrecord.pagination import Pagination

from . import rules, selectors, services
from .apis import (
    ContactPermission,
    DisclosureSerializer,
    contact_for_request,
)
from .models import (
    CONSENT_SOURCE_MAX_LENGTH,
    DISCLOSURE_KEY_MAX_LENGTH,
    DISCLOSURE_VALUE_MAX_LENGTH,
    NOTICE_VERSION_MAX_LENGTH,
    Audience,
    Consent,
    ConsentPurpose,
    Disclosure,
    DisclosurePurpose,
    DisclosureSource,
)


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
