from __future__ import annotations

from django.urls import path

from cdn import views

app_name = "cdn"
urlpatterns = [
    path("", views.feed, name="feed-root"),
    path("<path:path>", views.feed, name="feed"),
]
