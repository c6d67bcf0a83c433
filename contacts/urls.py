"""Contacts' URLs: ``api_urlpatterns`` under /api/v1/ and ``urlpatterns`` for pages."""

from django.urls import path

from . import apis, apis_consents, apis_lifecycle, apis_touches, views

api_urlpatterns = [
    path("contacts/", apis.ContactListCreateApi.as_view(), name="api-contacts"),
    path("contacts/merge/", apis_lifecycle.ContactMergeApi.as_view(), name="api-contact-merge"),
    path("contacts/<id:pk>/", apis.ContactDetailApi.as_view(), name="api-contact"),
    path(
        "contacts/<id:pk>/timeline/",
        apis.ContactTimelineApi.as_view(),
        name="api-contact-timeline",
    ),
    path(
        "contacts/<id:pk>/consents/",
        apis_consents.ContactConsentsApi.as_view(),
        name="api-contact-consents",
    ),
    path(
        "contacts/<id:pk>/disclosures/",
        apis_consents.ContactDisclosuresApi.as_view(),
        name="api-contact-disclosures",
    ),
    path(
        "contacts/<id:pk>/erase/",
        apis_lifecycle.ContactEraseApi.as_view(),
        name="api-contact-erase",
    ),
    path(
        "contacts/<id:pk>/export/",
        apis_lifecycle.ContactExportApi.as_view(),
        name="api-contact-export",
    ),
    path(
        "disclosures/<id:pk>/withdraw/",
        apis_consents.DisclosureWithdrawApi.as_view(),
        name="api-disclosure-withdraw",
    ),
]

urlpatterns = [
    path("contacts/new/", views.contact_new, name="contact-new"),
    path("contacts/<id:pk>/", views.contact_detail, name="contact"),
    path("contacts/<id:pk>/consents/new/", views.consent_new, name="consent-new"),
    path("contacts/<id:pk>/disclosures/new/", views.disclosure_new, name="disclosure-new"),
    path("contacts/<id:pk>/merge/", views.contact_merge, name="contact-merge"),
    path(
        "contacts/<id:pk>/organization/",
        views.contact_organization,
        name="contact-organization",
    ),
    path("contacts/<id:pk>/erase/", views.contact_erase, name="contact-erase"),
    path("contacts/<id:pk>/export/", views.contact_export, name="contact-export"),
    path("disclosures/<id:pk>/withdraw/", views.disclosure_withdraw, name="disclosure-withdraw"),
]

api_urlpatterns += [
    path("channels/", apis_touches.ChannelListCreateApi.as_view(), name="api-channels"),
    path("channels/<slug:key>/", apis_touches.ChannelDetailApi.as_view(), name="api-channel"),
    path("campaigns/", apis_touches.CampaignListCreateApi.as_view(), name="api-campaigns"),
    path("touches/", apis_touches.TouchListCreateApi.as_view(), name="api-touches"),
]
