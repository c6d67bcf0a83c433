"""The events app's API routes (under /api/v1/)."""

from django.urls import path

from . import apis

urlpatterns = [
    path("events/", apis.EventsApi.as_view(), name="api-events"),
]
