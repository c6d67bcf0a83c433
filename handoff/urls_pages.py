"""The handoff app's pages: queue, returned list, deals, rulesets, targets."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
