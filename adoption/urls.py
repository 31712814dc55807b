from __future__ import annotations

from django.urls import path

from adoption import views

app_name = "adoption"
urlpatterns = [path("", views.adoption, name="api")]
