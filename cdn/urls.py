from __future__ import annotations

app_name = "cdn"
urlpatterns: list = []
