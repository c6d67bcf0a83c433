"""This app's API routes, as a URLconf that ``leadrecord.api_urls`` includes by name."""

from django.urls import path

from . import apis

urlpatterns = [
    path("webhooks/endpoints/", apis.EndpointListCreateApi.as_view(), name="api-webhook-endpoints"),
    path(
        "webhooks/endpoints/<id:pk>/",
        apis.EndpointDetailApi.as_view(),
        name="api-webhook-endpoint",
    ),
    path(
        "webhooks/endpoints/<id:pk>/rotate-secret/",
        apis.EndpointRotateSecretApi.as_view(),
        name="api-webhook-endpoint-rotate",
    ),
    path(
        "webhooks/endpoints/<id:pk>/enable/",
        apis.EndpointEnableApi.as_view(),
        name="api-webhook-endpoint-enable",
    ),
    path(
        "webhooks/endpoints/<id:pk>/deliveries/",
        apis.EndpointDeliveriesApi.as_view(),
        name="api-webhook-endpoint-deliveries",
    ),
    path(
        "webhooks/endpoints/<id:pk>/replay/",
        apis.EndpointReplayApi.as_view(),
        name="api-webhook-endpoint-replay",
    ),
]
