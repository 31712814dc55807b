from __future__ import annotations

app_name = "releases"
urlpatterns: list = []
