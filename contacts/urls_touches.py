"""Pages for touches, campaigns and channels: included from ``leadrecord.urls``."""

from django.urls import path

from . import views_touches

urlpatterns = [
    path("touches/", views_touches.touch_log, name="touches"),
    path("touches/list/", views_touches.touch_list, name="touch-list"),
    path("campaigns/", views_touches.campaign_list, name="campaigns"),
    path("channels/", views_touches.channel_list, name="channels"),
]
