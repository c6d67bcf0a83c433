"""The reconciliation of attribution and contribution (docs/api.md: reports/reconciliation/)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadrecord import api_examples

from .apis import ReportPermission, RunMarkSerializer
from .apis_metrics import (
    BAD_QUERY,
    DATE_PARAMETERS,
    DATES_DOC,
    ReportRangeSerializer,
    _money,
    _range,
)
from .reconciliation import reconciliation


class AmountsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    amount = _money()


class OutsideSerializer(AmountsSerializer):
    no_touches = AmountsSerializer(
        help_text="No member of the buying group had a touch in the lookback before the sale."
    )
    consent_withdrawn = AmountsSerializer(
        help_text="The touches there were belong to people who withdrew analytics consent."
    )


class ReconciliationSerializer(serializers.Serializer):
    run = RunMarkSerializer(allow_null=True, help_text="The complete attribution run read.")
    gross_attributed = _money()
    churn = _money()
    net_revenue = _money()
    outside_attribution = OutsideSerializer()
    not_yet_attributed = AmountsSerializer(
        help_text="Conversions recorded after the run began reading; the next run credits them."
    )


class ReconciliationApi(APIView):
    permission_classes = [ReportPermission]

    @extend_schema(
        examples=api_examples.REPORT_RECONCILIATION,
        parameters=DATE_PARAMETERS,
        responses={200: ReconciliationSerializer, 400: BAD_QUERY},
        description=(
            "Why attribution's total and contribution's revenue differ for the same range. "
            "`gross_attributed`: the revenue the latest complete attribution run credits to "
            "channels for conversions (won, expansion, renewal sale events) in the range. "
            "`churn`: churn sale events in the range. `net_revenue`: conversions less churn, "
            "equal to `revenue.total` of reports/contribution/. `outside_attribution`: "
            "conversions in the range the run read but could not credit (no touch in the "
            "lookback, or only touches of people who withdrew analytics consent), with their "
            "count and amount. `not_yet_attributed`: conversions recorded after the run began. "
            "net_revenue = gross_attributed + outside_attribution.amount + "
            "not_yet_attributed.amount - churn. " + DATES_DOC
        ),
    )
    def get(self, request: Request) -> Response:
        params = _range(request, ReportRangeSerializer)
        result = reconciliation(params["from"], params["to"])
        run = (
            {"id": result.run_id, "finished_at": result.run_finished_at}
            if result.run_id is not None
            else None
        )
        return Response(
            ReconciliationSerializer(
                {
                    "run": run,
                    "gross_attributed": result.gross_attributed,
                    "churn": result.churn,
                    "net_revenue": result.net_revenue,
                    "outside_attribution": result.outside_attribution,
                    "not_yet_attributed": result.not_yet_attributed,
                }
            ).data
        )
