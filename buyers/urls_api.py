"""This app's API routes, as a URLconf that ``leadrecord.api_urls`` includes by name."""

from .urls import api_urlpatterns as urlpatterns

__all__ = ["urlpatterns"]
