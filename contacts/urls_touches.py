"""Pages for touches: included from ``leadrecord.urls``."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
