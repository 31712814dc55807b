from __future__ import annotations

from django.urls import path, register_converter

from cdn import views


class AnyPathConverter:
    """Like `path`, but also across line breaks: `%0A` reaches the view and gets its clear 400
    (the `path` converter's `.+` stops at a newline, so such a request fell through to the
    site's HTML 404, even on a feed host)."""

    regex = "(?s:.+)"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyPathConverter, "feedpath")

app_name = "cdn"
urlpatterns = [
    path("", views.feed, name="feed-root"),
    path("<feedpath:path>", views.feed, name="feed"),
]
