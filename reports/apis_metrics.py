"""The report endpoints over ``reports.metrics`` (docs/api.md: reports/contribution/,
reports/funnel/; and reports/attribution/models/, reports/campaigns/, reports/lifetime/).

Dates: ``from`` and ``to`` are whole days (``YYYY-MM-DD``) in the reporting time zone
(``LEADRECORD_TIME_ZONE``), both included. Without ``to``, today; without ``from``, the
first day of ``to``'s quarter. Money is a decimal string; shares are decimal strings
from 0 to 1 with four places.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from handoff.selectors import handoff_audiences_known_to
from leadrecord import api_examples
from leadrecord.dates import RANGE_TEXT
from leadrecord.openapi import RuleErrorResponseSerializer

from . import metrics
from .apis import DateRangeSerializer, ReportPermission
from .models import AttributionModel
from .selectors import run_latest_complete

DATES_DOC = (
    f"`from` and `to` are days (YYYY-MM-DD) {RANGE_TEXT} in the reporting time zone, both "
    "included; "
    "`to` defaults to today and `from` to the first day of `to`'s quarter. "
)
PEOPLE_DOC = (
    "People are distinct persons, never leads: `contacts` created by `to` (a merged contact "
    "counts once; erased people still count), `engaged` with a touch in the range, "
    "`qualified` with a qualification in it, `handed_off` with a handoff created in it, "
    "`accepted` with a handoff accepted in it, `customers` members of deals won in it. "
)


class ReportRangeSerializer(DateRangeSerializer):
    """``from``/``to`` with their defaults and bounds; validated data has both."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        start, end = metrics.range_or_default(attrs.get("from"), attrs.get("to"))
        if start > end:
            raise serializers.ValidationError(
                {"from": ["'from' comes after 'to' (today, when 'to' is not given)."]},
                code="invalid",
            )
        attrs["from"], attrs["to"] = start, end
        return attrs


def _range(request: Request, serializer_class: type[ReportRangeSerializer]) -> dict[str, Any]:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


DATE_PARAMETERS = [
    OpenApiParameter("from", str, description="YYYY-MM-DD, included (reporting time zone)"),
    OpenApiParameter("to", str, description="YYYY-MM-DD, included (reporting time zone)"),
]
BAD_QUERY = OpenApiResponse(
    RuleErrorResponseSerializer,
    description="Bad query: a malformed or out-of-range date, `from` after `to`, an unknown "
    "`model` or `group_by`; the error's `attr` names the field.",
)


def _money() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=2)


def _share() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=5, decimal_places=4, allow_null=True)


# --- contribution -------------------------------------------------------------------------


class SourceSplitSerializer(serializers.Serializer):
    marketing_sourced = _money()
    sales_sourced = _money()
    total = _money()
    marketing_share = _share()


class InfluencedSerializer(serializers.Serializer):
    pipeline = _money()
    revenue = _money()


class PeopleSerializer(serializers.Serializer):
    contacts = serializers.IntegerField()
    engaged = serializers.IntegerField()
    qualified = serializers.IntegerField()
    handed_off = serializers.IntegerField()
    accepted = serializers.IntegerField()
    customers = serializers.IntegerField()


class ContributionSerializer(serializers.Serializer):
    pipeline = SourceSplitSerializer()
    revenue = SourceSplitSerializer()
    target_share = _share()
    influenced = InfluencedSerializer()
    people = PeopleSerializer()


class ContributionApi(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(
        examples=api_examples.REPORT_CONTRIBUTION,
        parameters=DATE_PARAMETERS,
        responses={200: ContributionSerializer, 400: BAD_QUERY},
        description=(
            "Pipeline created and revenue closed in the range, each split by source, against "
            "the agreed target. "
            + DATES_DOC
            + "A deal's source is its override when set, else the derived source. `pipeline`: "
            "amounts of deals created in the range. `revenue`: won + expansion + renewal less "
            "churn sale events in the range, by their deal's source. `marketing_share` = "
            "marketing_sourced / total, null when the total is not positive. `target_share`: "
            "the ContributionTarget of the quarter holding `to`, or null. `influenced`: the "
            "same sums over deals a marketing touch preceded. " + PEOPLE_DOC
        ),
    )
    def get(self, request: Request) -> Response:
        params = _range(request, ReportRangeSerializer)
        result = metrics.contribution(
            params["from"], params["to"], handoff_audiences_known_to(request.user)
        )
        return Response(ContributionSerializer(result).data)


# --- funnel ---------------------------------------------------------------------------------


class StageSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    people = serializers.IntegerField()
    conversion_to_next = serializers.FloatField(allow_null=True)
    median_days_in_stage = serializers.FloatField(allow_null=True)


class LeakSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    count = serializers.IntegerField()
    url = serializers.CharField(help_text="The page listing the people or deals behind it.")


class FunnelSerializer(serializers.Serializer):
    stages = StageSerializer(many=True)
    leakage = LeakSerializer(many=True)


class FunnelApi(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(
        examples=api_examples.REPORT_FUNNEL,
        parameters=DATE_PARAMETERS,
        responses={200: FunnelSerializer, 400: BAD_QUERY},
        description=(
            "Stages contacts → engaged → qualified → handed_off → accepted → customers with "
            "the people at each (as in reports/contribution/), `conversion_to_next` (the next "
            "stage's people over this one's, both in the range: a period view, not a cohort; "
            "null when this stage has nobody) and `median_days_in_stage` of the people who "
            "left the stage in the range (creation → first touch, first touch → first "
            "qualification, first qualification → first handoff, handoff → decision, first "
            "acceptance → first won deal). Leakage: `qualified_not_handed_off` (people "
            "qualified in the range never handed off by `to`), `handoffs_expired` (people "
            "whose handoff expired in the range), `rejected_not_reengaged` (people rejected "
            "in the range, not as duplicates, with no touch or handoff since, by `to`), "
            "`deals_stalled` (deals open at the end of `to`, created 90 days or more before "
            "and without a sale event). " + DATES_DOC
        ),
    )
    def get(self, request: Request) -> Response:
        params = _range(request, ReportRangeSerializer)
        result = metrics.funnel(
            params["from"], params["to"], handoff_audiences_known_to(request.user)
        )
        return Response(FunnelSerializer(result).data)


# --- attribution side by side, campaigns, lifetime -----------------------------------------


class ModelsQuerySerializer(ReportRangeSerializer):
    group_by = serializers.ChoiceField(choices=metrics.GROUPINGS, default="channel")


class ModelRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    credits = serializers.DictField(child=serializers.FloatField())


class ModelsReportSerializer(serializers.Serializer):
    run = serializers.IntegerField(allow_null=True, help_text="The complete run read from.")
    group_by = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    rows = ModelRowSerializer(many=True)


class AttributionModelsApi(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(
        examples=api_examples.REPORT_MODELS,
        parameters=[
            OpenApiParameter("group_by", str, enum=list(metrics.GROUPINGS)),
            *DATE_PARAMETERS,
        ],
        responses={200: ModelsReportSerializer, 400: BAD_QUERY},
        description=(
            "Credit per channel, campaign or team under all eight models side by side, from "
            "the latest complete attribution run, for conversions (sale events) in the range; "
            "largest linear credit first. " + DATES_DOC
        ),
    )
    def get(self, request: Request) -> Response:
        params = _range(request, ModelsQuerySerializer)
        run = run_latest_complete()
        rows = metrics.attribution_by_model(params["from"], params["to"], params["group_by"])
        return Response(
            ModelsReportSerializer(
                {
                    "run": run.pk if run else None,
                    "group_by": params["group_by"],
                    "models": list(AttributionModel.values),
                    "rows": rows,
                }
            ).data
        )


class CampaignsQuerySerializer(ReportRangeSerializer):
    model = serializers.ChoiceField(
        choices=AttributionModel.choices, default=AttributionModel.LINEAR
    )


class CampaignRoiSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    name = serializers.CharField()
    channel = serializers.CharField()
    cost = _money()
    attributed_revenue = serializers.FloatField()
    roi = serializers.FloatField(allow_null=True)


class CampaignsReportSerializer(serializers.Serializer):
    run = serializers.IntegerField(allow_null=True)
    model = serializers.CharField()
    rows = CampaignRoiSerializer(many=True)


class CampaignRoiApi(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(
        examples=api_examples.REPORT_CAMPAIGNS,
        parameters=[
            OpenApiParameter("model", str, enum=AttributionModel.values),
            *DATE_PARAMETERS,
        ],
        responses={200: CampaignsReportSerializer, 400: BAD_QUERY},
        description=(
            "Every campaign's cost (its whole recorded cost) against the revenue the chosen "
            "model credits it with for conversions in the range, from the latest complete run; "
            "`roi` = (attributed_revenue - cost) / cost, null when the campaign cost nothing. "
            + DATES_DOC
        ),
    )
    def get(self, request: Request) -> Response:
        params = _range(request, CampaignsQuerySerializer)
        run = run_latest_complete()
        rows = metrics.campaign_roi(params["from"], params["to"], params["model"])
        return Response(
            CampaignsReportSerializer(
                {"run": run.pk if run else None, "model": params["model"], "rows": rows}
            ).data
        )


class LifetimeRowSerializer(serializers.Serializer):
    source = serializers.CharField()  # type: ignore[assignment]
    won = _money()
    expansion = _money()
    renewal = _money()
    churn = _money()
    net = _money()


class LifetimeReportSerializer(serializers.Serializer):
    rows = LifetimeRowSerializer(many=True)


class LifetimeApi(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(
        examples=api_examples.REPORT_LIFETIME,
        parameters=DATE_PARAMETERS,
        responses={200: LifetimeReportSerializer, 400: BAD_QUERY},
        description=(
            "Sale events in the range by their deal's source (override, else derived): the "
            "first sale (`won`) and the relationship after it (`expansion`, `renewal`, "
            "`churn`); `net` = won + expansion + renewal - churn. One row per source. " + DATES_DOC
        ),
    )
    def get(self, request: Request) -> Response:
        params = _range(request, ReportRangeSerializer)
        rows = metrics.lifetime(params["from"], params["to"])
        return Response(LifetimeReportSerializer({"rows": rows}).data)
