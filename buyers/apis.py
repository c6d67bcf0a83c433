"""Forms in the API: list and create (marketers and managers), one form, its submissions."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from contacts.models import Campaign, DisclosurePurpose
from leadrecord.ledger import Actor
from leadrecord.pagination import Pagination
from leadrecord.permissions import roles_allowed

from . import api_examples, selectors, services
from .models import (
    FORM_INTRO_MAX_LENGTH,
    FORM_SLUG_MAX_LENGTH,
    FORM_TITLE_MAX_LENGTH,
    BuyerForm,
    FormSubmission,
)

FormPermission = roles_allowed(read=selectors.FORM_ROLES, write=selectors.FORM_ROLES)


class FormOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    title = serializers.CharField()
    intro = serializers.CharField()
    ask_names = serializers.BooleanField()
    ask_organization = serializers.BooleanField()
    consents = serializers.JSONField()
    disclosures = serializers.JSONField()
    purpose = serializers.CharField()
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    published = serializers.BooleanField()
    created_at = serializers.DateTimeField()


@extend_schema_view(get=extend_schema(examples=api_examples.FORMS_LIST))
class FormListCreateApi(ListAPIView):
    """Forms a marketer publishes: ``/f/<slug>/`` hosts each, ``/f/<slug>/embed/`` frames it."""

    permission_classes = [FormPermission]
    pagination_class = Pagination
    queryset = BuyerForm.objects.none()
    serializer_class = FormOutputSerializer

    class InputSerializer(serializers.Serializer):
        slug = serializers.SlugField(max_length=FORM_SLUG_MAX_LENGTH)
        title = serializers.CharField(max_length=FORM_TITLE_MAX_LENGTH)
        intro = serializers.CharField(
            max_length=FORM_INTRO_MAX_LENGTH, required=False, allow_blank=True
        )
        ask_names = serializers.BooleanField(required=False, default=True)
        ask_organization = serializers.BooleanField(required=False, default=True)
        consents = serializers.ListField(child=serializers.DictField(), max_length=3, default=list)
        disclosures = serializers.ListField(
            child=serializers.DictField(), max_length=services.FORM_DISCLOSURES_MAX, default=list
        )
        purpose = serializers.ChoiceField(
            choices=DisclosurePurpose.choices, default=DisclosurePurpose.QUALIFICATION
        )
        campaign = serializers.PrimaryKeyRelatedField(
            queryset=Campaign.objects.all(), required=False, allow_null=True
        )
        published = serializers.BooleanField(required=False, default=True)

    def get_queryset(self) -> QuerySet[BuyerForm]:
        return selectors.forms_all()

    @extend_schema(
        request=InputSerializer,
        responses={201: FormOutputSerializer},
        examples=api_examples.FORMS_CREATE,
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        form = services.buyer_form_create(
            actor=Actor.of(request.user), created_by=request.user, **data
        )
        return Response(FormOutputSerializer(form).data, status=status.HTTP_201_CREATED)


@extend_schema_view(get=extend_schema(examples=api_examples.FORM_DETAIL))
class FormDetailApi(RetrieveAPIView):
    permission_classes = [FormPermission]
    serializer_class = FormOutputSerializer

    def get_queryset(self) -> QuerySet[BuyerForm]:
        return selectors.forms_all()


class SubmissionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    contact = serializers.IntegerField(source="contact_id")
    touch = serializers.IntegerField(source="touch_id", allow_null=True)
    campaign = serializers.IntegerField(source="campaign_id", allow_null=True)
    shared_device = serializers.BooleanField()
    created_person = serializers.BooleanField()
    submitted_at = serializers.DateTimeField()
    utm = serializers.JSONField()


@extend_schema_view(get=extend_schema(examples=api_examples.FORM_SUBMISSIONS))
class FormSubmissionListApi(ListAPIView):
    """Who sent a form, when, from which campaign (``utm`` as sent)."""

    permission_classes = [FormPermission]
    pagination_class = Pagination
    serializer_class = SubmissionOutputSerializer
    queryset = FormSubmission.objects.none()

    def get_queryset(self) -> QuerySet[FormSubmission]:
        form = get_object_or_404(selectors.forms_all(), pk=self.kwargs["pk"])
        return selectors.form_submissions(form)
