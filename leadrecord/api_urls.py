"""Everything under /api/v1/. Apps add their API routes here, included by module name:
this package imports no app (docs/layers.md)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from . import api

# Viewsets, where an app uses them, register on this router.
router = SimpleRouter()

urlpatterns = [
    path("health/", api.HealthView.as_view(), name="api-health"),
    path("me/", api.MeView.as_view(), name="api-me"),
    path("ledger/", api.LedgerEntryListView.as_view(), name="api-ledger"),
    path(
        "ledger/checkpoints/latest/",
        api.LedgerCheckpointLatestView.as_view(),
        name="api-ledger-checkpoint-latest",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("contacts.urls_api")),
    path("", include("events.urls_api")),
    path("", include("handoff.urls_api")),
    path("", include("reports.urls_api")),
    path("", include("buyers.urls_api")),
    path("", include("webhooks.urls_api")),
    *router.urls,
]
