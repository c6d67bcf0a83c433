"""The reports app's API routes (under /api/v1/)."""

from django.urls import path

from . import apis

api_urlpatterns = [
    path("attribution/runs/", apis.RunCreateApi.as_view(), name="api-attribution-runs"),
    path("attribution/runs/<id:pk>/", apis.RunDetailApi.as_view(), name="api-attribution-run"),
    path(
        "reports/attribution/", apis.AttributionReportApi.as_view(), name="api-report-attribution"
    ),
]
