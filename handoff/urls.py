"""The handoff app's API routes (under /api/v1/)."""

from django.urls import path

from . import apis, apis_deals, apis_targets

api_urlpatterns = [
    path("rulesets/", apis.RulesetListCreateApi.as_view(), name="api-rulesets"),
    path("rulesets/<id:pk>/", apis.RulesetDetailApi.as_view(), name="api-ruleset"),
    path(
        "rulesets/<id:pk>/activate/",
        apis.RulesetActivateApi.as_view(),
        name="api-ruleset-activate",
    ),
    path("handoffs/", apis.HandoffListCreateApi.as_view(), name="api-handoffs"),
    path("handoffs/<id:pk>/", apis.HandoffDetailApi.as_view(), name="api-handoff"),
    path("handoffs/<id:pk>/accept/", apis.HandoffAcceptApi.as_view(), name="api-handoff-accept"),
    path("handoffs/<id:pk>/reject/", apis.HandoffRejectApi.as_view(), name="api-handoff-reject"),
    path("deals/", apis_deals.DealListCreateApi.as_view(), name="api-deals"),
    path("deals/<id:pk>/", apis_deals.DealDetailApi.as_view(), name="api-deal"),
    path(
        "deals/<id:pk>/sale-events/",
        apis_deals.SaleEventCreateApi.as_view(),
        name="api-deal-sale-events",
    ),
    path(
        "deals/<id:pk>/override-source/",
        apis_deals.DealOverrideSourceApi.as_view(),
        name="api-deal-override-source",
    ),
    path("targets/", apis_targets.TargetListCreateApi.as_view(), name="api-targets"),
]
