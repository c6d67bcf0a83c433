"""Everything under /api/v1/. Apps add their API routes here."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from contacts.urls import api_urlpatterns as contacts_api
from handoff.urls import api_urlpatterns as handoff_api
from reports.urls import api_urlpatterns as reports_api

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
    *contacts_api,
    *handoff_api,
    *reports_api,
    *router.urls,
]
