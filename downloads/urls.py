from __future__ import annotations

app_name = "downloads"
urlpatterns: list = []
