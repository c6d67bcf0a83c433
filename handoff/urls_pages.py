"""The handoff app's pages: queue, returned list, deals, rulesets, targets."""

from django.urls import path

from . import views, views_lists, views_organizations

urlpatterns = [
    path("handoffs/", views.handoff_queue, name="handoff-queue"),
    path("handoffs/returned/", views.handoffs_returned, name="handoffs-returned"),
    path("handoffs/<id:pk>/accept/", views.handoff_accept, name="handoff-accept"),
    path("handoffs/<id:pk>/reject/", views.handoff_reject, name="handoff-reject"),
    path("contacts/<id:pk>/handoff/", views.handoff_new, name="handoff-new"),
    path("contacts/", views_lists.contact_list, name="contacts"),
    path("deals/", views_lists.deal_list, name="deals"),
    path("organizations/", views_organizations.organization_list, name="organizations"),
    path(
        "organizations/<id:pk>/",
        views_organizations.organization_detail,
        name="organization",
    ),
    path("deals/new/", views.deal_new, name="deal-new"),
    path("deals/<id:pk>/", views.deal_detail, name="deal"),
    path("deals/<id:pk>/sale-events/", views.sale_event_new, name="deal-sale-event"),
    path(
        "deals/<id:pk>/override-source/",
        views.deal_override_source,
        name="deal-override-source",
    ),
    path("rules/", views.ruleset_list, name="rulesets"),
    path("rules/new/", views.ruleset_new, name="ruleset-new"),
    path("rules/targets/", views.targets, name="targets"),
    path("rules/<id:pk>/", views.ruleset_detail, name="ruleset"),
    path("rules/<id:pk>/edit/", views.ruleset_edit, name="ruleset-edit"),
    path("rules/<id:pk>/activate/", views.ruleset_activate, name="ruleset-activate"),
]
