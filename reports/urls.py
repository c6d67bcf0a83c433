"""The reports app's API routes (under /api/v1/)."""

from django.urls import path

from . import apis, apis_metrics, apis_reconciliation

api_urlpatterns = [
    path("attribution/runs/", apis.RunCreateApi.as_view(), name="api-attribution-runs"),
    path("attribution/runs/<id:pk>/", apis.RunDetailApi.as_view(), name="api-attribution-run"),
    path(
        "reports/attribution/", apis.AttributionReportApi.as_view(), name="api-report-attribution"
    ),
    path(
        "reports/attribution/models/",
        apis_metrics.AttributionModelsApi.as_view(),
        name="api-report-attribution-models",
    ),
    path(
        "reports/contribution/",
        apis_metrics.ContributionApi.as_view(),
        name="api-report-contribution",
    ),
    path("reports/funnel/", apis_metrics.FunnelApi.as_view(), name="api-report-funnel"),
    path("reports/campaigns/", apis_metrics.CampaignRoiApi.as_view(), name="api-report-campaigns"),
    path("reports/lifetime/", apis_metrics.LifetimeApi.as_view(), name="api-report-lifetime"),
    path(
        "reports/reconciliation/",
        apis_reconciliation.ReconciliationApi.as_view(),
        name="api-report-reconciliation",
    ),
]
